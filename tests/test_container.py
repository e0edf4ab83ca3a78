"""The .rcq container: round trips, exact sizes, and FormatError for every malformed input."""

import io
import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rotcodec.errors import FormatError
from rotcodec.io.bitpack import packed_size
from rotcodec.io.container import (
    FORMAT_VERSION, MAGIC, Header, dumps, loads, loads_gains, rcq_size, read_header, read_rcq, write_rcq,
)


def make_header(**kw) -> Header:
    fields = dict(
        model="speech16k-v1", model_hash="0123456789abcdef", sample_rate=16000,
        original_sample_rate=44100, channels=1, n_q=8, bits=10, frame_rate=50.0,
        frames=500, length=441000, chunk_frames=0, chunk_overlap=0,
    )
    fields.update(kw)
    return Header(**fields)


def random_codes(h: Header, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**h.bits, size=(h.channels, h.n_q, h.frames))


def build(header_obj, payload: bytes, version: int = FORMAT_VERSION) -> bytes:
    """Assemble a file from a raw JSON object with valid CRCs (to reach the validation)."""
    raw = json.dumps(header_obj, separators=(",", ":")).encode()
    return (MAGIC + bytes([version]) + struct.pack("<I", len(raw)) + raw
            + struct.pack("<I", zlib.crc32(raw)) + payload + struct.pack("<I", zlib.crc32(payload)))


SMALL = make_header(channels=2, n_q=2, frames=3, bits=5, length=300, original_sample_rate=16000)
SMALL_FILE = dumps(SMALL, random_codes(SMALL, 1))


@pytest.mark.parametrize(
    "kw",
    [{}, dict(channels=2, n_q=3, frames=7, bits=1), dict(channels=6, n_q=32, frames=11, bits=16),
     dict(frames=0, length=0), dict(chunk_frames=250, chunk_overlap=10, model_hash="")],
)
def test_round_trip(kw):
    h = make_header(**kw)
    codes = random_codes(h)
    data = dumps(h, codes)
    h2, codes2 = loads(data)
    assert h2 == h
    assert codes2.dtype == np.int64 and codes2.shape == (h.channels, h.n_q, h.frames)
    np.testing.assert_array_equal(codes2, codes)
    # exact size: fixed prefix + header + two CRCs + packed payload
    header_len = len(json.dumps(h.to_json(), separators=(",", ":")).encode())
    expected = 4 + 1 + 4 + header_len + 4 + packed_size(codes.size, h.bits) + 4
    assert len(data) == expected == rcq_size(h)


def test_stream_api_and_torch_codes():
    h = make_header(channels=2, frames=20)
    codes = torch.from_numpy(random_codes(h))
    buf = io.BytesIO()
    n = write_rcq(buf, h, codes)
    assert n == len(buf.getvalue()) == rcq_size(h)
    buf.seek(0)
    assert read_header(buf) == h
    buf.seek(0)
    h2, codes2 = read_rcq(buf)
    assert h2 == h
    np.testing.assert_array_equal(codes2, codes.numpy())


def test_storage_is_frame_major():
    h = make_header(channels=2, n_q=3, frames=4, bits=8)
    codes = np.arange(24).reshape(2, 3, 4)
    payload = dumps(h, codes)[-4 - 24:-4]
    assert list(payload) == list(codes.transpose(2, 0, 1).reshape(-1))


def test_overhead_is_small_and_bitrate_is_near_nominal():
    h = make_header(n_q=8, bits=10, frame_rate=75.0, frames=750)  # 10 s at 6 kbps
    data = dumps(h, random_codes(h))
    payload = 7500
    assert len(data) - payload < 200
    assert len(data) <= payload * 1.03


def test_write_validates_codes():
    h = make_header(frames=4)
    with pytest.raises(ValueError, match="shape"):
        dumps(h, np.zeros((1, 8, 5), dtype=np.int64))
    with pytest.raises(ValueError):
        dumps(h, np.full((1, 8, 4), 1024))
    with pytest.raises(ValueError):
        dumps(h, np.full((1, 8, 4), -1))
    with pytest.raises(ValueError, match="integer"):
        dumps(h, np.zeros((1, 8, 4)))
    with pytest.raises(TypeError):
        dumps(h, [[[0] * 4] * 8])


def test_every_truncation_is_format_error():
    for n in range(len(SMALL_FILE)):
        with pytest.raises(FormatError):
            loads(SMALL_FILE[:n])


def test_every_bit_flip_is_format_error():
    for i in range(len(SMALL_FILE)):
        for b in range(8):
            bad = bytearray(SMALL_FILE)
            bad[i] ^= 1 << b
            with pytest.raises(FormatError):
                loads(bytes(bad))


def test_wrong_magic_and_versions():
    with pytest.raises(FormatError, match="not a rotcodec .rcq file"):
        loads(b"RIFF" + SMALL_FILE[4:])
    with pytest.raises(FormatError, match="not a rotcodec .rcq file"):
        loads(b"RI")
    future = SMALL_FILE[:4] + bytes([FORMAT_VERSION + 1]) + SMALL_FILE[5:]
    with pytest.raises(FormatError, match=rf"newer rotcodec \(format {FORMAT_VERSION + 1}\); upgrade"):
        loads(future)
    with pytest.raises(FormatError, match="version 0"):
        loads(SMALL_FILE[:4] + b"\0" + SMALL_FILE[5:])
    with pytest.raises(FormatError, match="exceeds"):
        loads(SMALL_FILE[:5] + struct.pack("<I", 16385) + SMALL_FILE[9:])


def test_trailing_garbage_is_format_error():
    with pytest.raises(FormatError, match="after the payload"):
        loads(SMALL_FILE + b"\0")


def test_huge_claim_in_tiny_file_fails_fast():
    obj = make_header(frames=2**30, length=0).to_json()
    data = build(obj, b"\0" * 50)
    assert len(data) < 300
    tracemalloc.start()  # what it must not do is allocate the 2**30 frames the header claims
    with pytest.raises(FormatError, match="truncated"):
        loads(data)

    class NonSeekable(io.RawIOBase):  # a pipe-like stream: allocation bounded by real data
        def __init__(self, payload):
            self._buf = io.BytesIO(payload)

        def readable(self):
            return True

        def readinto(self, b):
            chunk = self._buf.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    with pytest.raises(FormatError, match="truncated"):
        read_rcq(NonSeekable(data))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 2**20


def test_frames_limit():
    with pytest.raises(FormatError, match="exceeds"):
        make_header(frames=2**34, channels=2, n_q=1)
    with pytest.raises(FormatError):
        loads(build(dict(make_header().to_json(), frames=2**33, ch=4), b""))


# Each mutation of the JSON object, with a valid CRC, must be caught by the validation.
GOOD = make_header(frames=2, channels=1, n_q=1, bits=4).to_json()
PAYLOAD = b"\x12"
BAD_VALUES = {
    "model": [5, None, "", "x" * 65, "a\nb", ["m"]],
    "hash": [1, "XYZ", "ABCDEF", "0" * 65, None],
    "sr": [True, 16000.0, "16000", 0, -1, 1_000_001, None],
    "orig_sr": [False, 44100.5, 0, -44100, 2**40],
    "ch": [0, 65, 1.0, True, -1],
    "n_q": [0, 65, "1", True],
    "bits": [0, 17, 4.0, True, -4],
    "fps": [0, -50.0, True, "50", 1e300, None],
    "frames": [-1, 2.0, True, 2**35, "2"],
    "len": [-1, 1.5, 2**60, True],
    "chunk": [-1, 0.0, 2**40, False],
    "overlap": [-1, 1.0, 2**40, True],
}


@pytest.mark.parametrize("key,value", [(k, v) for k, vs in BAD_VALUES.items() for v in vs])
def test_bad_field_values(key, value):
    obj = dict(GOOD, **{key: value})
    with pytest.raises(FormatError, match=repr(key)):
        loads(build(obj, PAYLOAD))


@pytest.mark.parametrize("key", list(GOOD))
def test_missing_field(key):
    obj = {k: v for k, v in GOOD.items() if k != key}
    with pytest.raises(FormatError, match="missing"):
        loads(build(obj, PAYLOAD))


def test_unknown_field_and_non_objects():
    assert loads(build(GOOD, PAYLOAD))[0] == Header.from_json(GOOD)
    with pytest.raises(FormatError, match="unknown"):
        loads(build(dict(GOOD, extra=1), PAYLOAD))
    for obj in ([1, 2], "x", 3, None):
        with pytest.raises(FormatError, match="JSON object"):
            loads(build(obj, PAYLOAD))


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe{}", b"{", b"", b'{"a":NaN}', b'{"fps":Infinity}', b"[" * 5000 + b"]" * 5000,
     b'{"model":"a","model":"b"}', b'{"len":' + b"9" * 5000 + b"}"],
)
def test_bad_header_bytes(raw):
    data = (MAGIC + bytes([FORMAT_VERSION]) + struct.pack("<I", len(raw)) + raw
            + struct.pack("<I", zlib.crc32(raw)) + b"\0\0\0\0")
    with pytest.raises(FormatError):
        loads(data)


def test_loads_type_error():
    with pytest.raises(TypeError):
        loads("RCQ")


def test_header_accepts_numpy_ints_and_int_frame_rate():
    h = make_header(frames=np.int64(5), channels=np.int32(2), frame_rate=75)
    assert type(h.frames) is int and type(h.frame_rate) is float
    assert Header.from_json(h.to_json()) == h


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_random_bytes_only_raise_format_error(data):
    with pytest.raises(FormatError):
        loads(data)


@given(st.binary(max_size=300), st.integers(0, 255))
@settings(max_examples=300, deadline=None)
def test_random_bytes_after_magic_only_raise_format_error(tail, version):
    with pytest.raises(FormatError):
        loads(MAGIC + bytes([version]) + tail)


@given(st.integers(0, len(SMALL_FILE) - 1), st.binary(min_size=1, max_size=8))
@settings(max_examples=300, deadline=None)
def test_random_splices_only_raise_format_error(pos, junk):
    data = SMALL_FILE[:pos] + junk + SMALL_FILE[pos + len(junk):]
    if data == SMALL_FILE:
        return
    with pytest.raises(FormatError):
        loads(data)


# ----- gains (format 2) --------------------------------------------------------------------------
GAINED = make_header(channels=2, n_q=2, frames=7, bits=5, length=700, original_sample_rate=16000, gain_frames=3)


def random_gains(h: Header, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=(h.channels, h.gain_blocks)).astype(np.int8)


def test_gains_round_trip_and_size():
    codes, gains = random_codes(GAINED, 2), random_gains(GAINED, 3)
    assert GAINED.gain_blocks == 3 and GAINED.num_gains == 6  # ceil(7 / 3) blocks, the last one short
    data = dumps(GAINED, codes, gains)
    plain = make_header(**{**vars(GAINED), "gain_frames": 0})
    assert len(data) == rcq_size(GAINED) == rcq_size(plain) + 6  # one byte per gain, nothing else
    h, codes2, gains2 = loads_gains(data)
    assert h == GAINED and h.gain_frames == 3
    np.testing.assert_array_equal(codes2, codes)
    assert gains2.dtype == np.int8 and gains2.shape == (2, 3)
    np.testing.assert_array_equal(gains2, gains)
    assert loads(data)[0] == GAINED
    # stored block-major [B, C] right after the header CRC
    start = len(data) - 4 - packed_size(codes.size, GAINED.bits) - 6
    assert data[start: start + 6] == gains.T.tobytes()


def test_no_gains_reads_as_empty():
    h, _, gains = loads_gains(SMALL_FILE)
    assert h.gain_frames == 0 and gains.shape == (2, 0) and gains.dtype == np.int8


def test_writer_refuses_gains_that_do_not_fit():
    codes = random_codes(GAINED)
    with pytest.raises(ValueError, match="no gains"):
        dumps(GAINED, codes)
    with pytest.raises(ValueError, match=r"\[C, B\] = \(2, 3\)"):
        dumps(GAINED, codes, np.zeros((2, 2), np.int8))
    with pytest.raises(ValueError, match="int8"):
        dumps(GAINED, codes, np.full((2, 3), 200))
    with pytest.raises(ValueError, match="gain_frames = 0"):
        dumps(SMALL, random_codes(SMALL), np.zeros((2, 1), np.int8))


def test_every_damaged_gain_byte_is_a_format_error():
    data = dumps(GAINED, random_codes(GAINED, 2), random_gains(GAINED, 3))
    start = len(data) - 4 - packed_size(GAINED.num_codes, GAINED.bits) - GAINED.num_gains
    for i in range(start, start + GAINED.num_gains):
        for b in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << b
            with pytest.raises(FormatError, match="CRC"):
                loads_gains(bytes(bad))


def test_gain_count_the_file_cannot_hold_fails_before_allocating():
    # a header claiming one gain block per frame of 2**30 frames, in a 300-byte file
    obj = make_header(frames=2**30, length=0, n_q=1, bits=1, gain_frames=1).to_json()
    data = build(obj, b"\0" * 50)
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="truncated"):
            loads_gains(data)
        assert tracemalloc.get_traced_memory()[1] < 10**6
    finally:
        tracemalloc.stop()
    gained = dumps(GAINED, random_codes(GAINED), random_gains(GAINED))
    for cut in range(1, GAINED.num_gains + packed_size(GAINED.num_codes, GAINED.bits) + 5):
        with pytest.raises(FormatError):
            loads_gains(gained[:-cut])


def test_format1_headers_have_no_gain_key():
    obj = SMALL.to_json()
    assert obj["g"] == 0
    v1 = {k: v for k, v in obj.items() if k != "g"}
    payload = dumps(SMALL, random_codes(SMALL, 1))[-4 - packed_size(SMALL.num_codes, SMALL.bits): -4]
    h, codes = loads(build(v1, payload, version=1))
    assert h == SMALL and h.gain_frames == 0
    with pytest.raises(FormatError, match="unknown field.*'g'"):
        loads(build({**v1, "g": 5}, payload, version=1))  # format 1 never had gains
    with pytest.raises(FormatError, match="missing field.*'g'"):
        loads(build(v1, payload, version=2))
    with pytest.raises(FormatError, match="'g'"):
        loads(build({**obj, "g": -1}, payload))
