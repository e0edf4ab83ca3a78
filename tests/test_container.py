"""The .rcq container: round trips, exact sizes, and FormatError for every malformed input.

Formats 2 (JSON header) and 3 (binary header, the default) are both written and attacked here;
the committed fixtures of formats 1-3 are in tests/data (see its README)."""

import io
import json
import math
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rotcodec.errors import FormatError
from rotcodec.io.bitpack import packed_size
from rotcodec.io.container import (
    FORMAT_VERSION, MAGIC, PAYLOAD_BITPACKED, Header, dumps, loads, loads_gains, peek_version, rcq_size,
    read_header, read_rcq, write_rcq,
)

DATA = Path(__file__).resolve().parent / "data"


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


def build(header_obj, payload: bytes, version: int = 2) -> bytes:
    """Assemble a format-1/2 file from a raw JSON object with valid CRCs (to reach the validation)."""
    raw = json.dumps(header_obj, separators=(",", ":")).encode()
    return (MAGIC + bytes([version]) + struct.pack("<I", len(raw)) + raw
            + struct.pack("<I", zlib.crc32(raw)) + payload + struct.pack("<I", zlib.crc32(payload)))


FIXED3 = struct.Struct("<BBBBIIdIQIHH")  # format 3's fixed fields, as the module docstring lists them


def build3(fixed=None, model: bytes = b"speech16k-v1", hash_digits: int = 16, hash_bytes: bytes | None = None,
           payload: bytes = b"", **changes) -> bytes:
    """Assemble a format-3 file from raw field values (``changes`` on the defaults of ``make_header``,
    plus ``coding``) with valid CRCs, to reach the field checks."""
    values = dict(coding=0, channels=1, n_q=1, bits=4, sample_rate=16000, original_sample_rate=16000,
                  frame_rate=50.0, frames=2, length=640, chunk_frames=0, chunk_overlap=0, gain_frames=0)
    values.update(changes)
    if fixed is None:
        fixed = FIXED3.pack(*values.values())
    hash_bytes = bytes.fromhex("0123456789abcdef") if hash_bytes is None else hash_bytes
    head = MAGIC + b"\x03" + fixed + bytes([len(model)]) + model + bytes([hash_digits]) + hash_bytes
    return head + struct.pack("<I", zlib.crc32(head)) + payload + struct.pack("<I", zlib.crc32(payload))


SMALL = make_header(channels=2, n_q=2, frames=3, bits=5, length=300, original_sample_rate=16000)
SMALL_FILE = dumps(SMALL, random_codes(SMALL, 1))
SMALL_FILE_V2 = dumps(SMALL, random_codes(SMALL, 1), version=2)


@pytest.mark.parametrize(
    "kw",
    [{}, dict(channels=2, n_q=3, frames=7, bits=1), dict(channels=6, n_q=32, frames=11, bits=16),
     dict(frames=0, length=0), dict(chunk_frames=250, chunk_overlap=10, model_hash="")],
)
@pytest.mark.parametrize("version", [2, 3])
def test_round_trip(kw, version):
    h = make_header(**kw)
    codes = random_codes(h)
    data = dumps(h, codes, version=version)
    assert data[4] == version and peek_version(io.BytesIO(data)) == version
    h2, codes2 = loads(data)
    assert h2 == h
    assert codes2.dtype == np.int64 and codes2.shape == (h.channels, h.n_q, h.frames)
    np.testing.assert_array_equal(codes2, codes)
    # exact size: magic + version + header + two CRCs + packed payload
    if version == 2:
        header_len = 4 + len(json.dumps(h.to_json(), separators=(",", ":")).encode())
    else:  # fixed fields, then the model id and the hash, each after its length byte
        header_len = FIXED3.size + 1 + len(h.model.encode()) + 1 + math.ceil(len(h.model_hash) / 2)
    expected = 4 + 1 + header_len + 4 + packed_size(codes.size, h.bits) + 4
    assert len(data) == expected == rcq_size(h, version)


def test_default_is_format_3():
    assert FORMAT_VERSION == 3 and SMALL_FILE[4] == 3 and rcq_size(SMALL) == len(SMALL_FILE)
    assert dumps(SMALL, random_codes(SMALL, 1), version=3) == SMALL_FILE


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
    assert len(data) - payload < 100
    assert len(data) <= payload * 1.01
    assert len(dumps(h, random_codes(h), version=2)) - payload < 200


def test_format3_header_of_the_bundled_model_is_72_bytes():
    """The bundled model's header (13-character id, 16-digit hash): 72 bytes from the magic through
    the header CRC, against 185 in format 2; with the payload CRC, 76 bytes a file."""
    h = make_header(model="stft16k-cpu@1", n_q=12, frames=100, length=32000, original_sample_rate=16000,
                    chunk_frames=250, chunk_overlap=20, gain_frames=50)
    codes, gains = random_codes(h), np.zeros((1, 2), np.int8)
    payload = 1500 + 2  # 2 s at 6 kbps, and a gain a second
    assert len(dumps(h, codes, gains)) - payload == 76
    assert len(dumps(h, codes, gains, version=2)) - payload == 189


def test_writer_refuses_what_format_3_cannot_hold():
    for kw in (dict(frames=2**32, length=0, n_q=1), dict(chunk_frames=2**32), dict(chunk_overlap=2**16),
               dict(gain_frames=2**16), dict(model="\U0001f600" * 64)):
        h = make_header(**kw)
        with pytest.raises(ValueError, match="format 3"):
            rcq_size(h)
        assert rcq_size(h, version=2) > 0  # format 2 still holds them
    h = make_header(frames=2**32 - 1, length=0, n_q=1, chunk_frames=2**32 - 1, chunk_overlap=2**16 - 1,
                    gain_frames=2**16 - 1, model="\U0001f600" * 63)
    assert rcq_size(h) > 0  # the largest values that fit
    for version in (1, 4, "3", True, None):
        with pytest.raises(ValueError, match="can write"):
            dumps(SMALL, random_codes(SMALL), version=version)


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


@pytest.mark.parametrize("data", [SMALL_FILE, SMALL_FILE_V2], ids=["v3", "v2"])
def test_every_truncation_is_format_error(data):
    for n in range(len(data)):
        with pytest.raises(FormatError):
            loads(data[:n])


@pytest.mark.parametrize("data", [SMALL_FILE, SMALL_FILE_V2], ids=["v3", "v2"])
def test_every_bit_flip_is_format_error(data):
    for i in range(len(data)):
        for b in range(8):
            bad = bytearray(data)
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
        loads(SMALL_FILE_V2[:5] + struct.pack("<I", 16385) + SMALL_FILE_V2[9:])
    with pytest.raises(FormatError):  # a format-3 file called format 2, and the reverse
        loads(SMALL_FILE[:4] + b"\x02" + SMALL_FILE[5:])
    with pytest.raises(FormatError):
        loads(SMALL_FILE_V2[:4] + b"\x03" + SMALL_FILE_V2[5:])
    with pytest.raises(FormatError, match="wrong magic"):
        peek_version(io.BytesIO(b"RIFF\x03"))


def test_trailing_garbage_is_format_error():
    for data in (SMALL_FILE, SMALL_FILE_V2):
        with pytest.raises(FormatError, match="after the payload"):
            loads(data + b"\0")


@pytest.mark.parametrize("version", [2, 3])
def test_huge_claim_in_tiny_file_fails_fast(version):
    if version == 2:
        data = build(make_header(frames=2**30, length=0).to_json(), b"\0" * 50)
    else:
        data = build3(frames=2**30, n_q=8, bits=10, payload=b"\0" * 50)
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
    with pytest.raises(FormatError, match="exceeds"):
        loads(build3(frames=2**32 - 1, channels=64, n_q=64))


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
    data = (MAGIC + bytes([2]) + struct.pack("<I", len(raw)) + raw
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


@given(st.sampled_from([SMALL_FILE, SMALL_FILE_V2]), st.integers(0, 400), st.binary(min_size=1, max_size=8))
@settings(max_examples=300, deadline=None)
def test_random_splices_only_raise_format_error(good, pos, junk):
    pos %= len(good)
    data = good[:pos] + junk + good[pos + len(junk):]
    if data == good:
        return
    with pytest.raises(FormatError):
        loads(data)


# ----- format 3: each raw field value, with valid CRCs, must be caught by the validation ------------
def test_build3_makes_a_valid_file():
    h, codes = loads(build3(payload=b"\x12"))
    assert h == make_header(frames=2, n_q=1, bits=4, length=640, original_sample_rate=16000)
    assert codes.tolist() == [[[1, 2]]]


BAD_FIXED3 = {
    "channels": [0, 65, 255], "n_q": [0, 65], "bits": [0, 17, 255],
    "sample_rate": [0, 1_000_001, 2**32 - 1], "original_sample_rate": [0, 2**31],
    "frame_rate": [0.0, -50.0, math.nan, math.inf, -math.inf, 1e300],
    "length": [2**50 + 1, 2**64 - 1],
}


@pytest.mark.parametrize("name,value", [(k, v) for k, vs in BAD_FIXED3.items() for v in vs])
def test_format3_bad_field_values(name, value):
    with pytest.raises(FormatError, match=rf"\({name}\)"):
        loads(build3(payload=b"\x12", **{name: value}))


@pytest.mark.parametrize("coding", [2, 127, 255])  # 1 is PAYLOAD_ENTROPY (tests/test_entropy.py)
def test_format3_unknown_payload_coding(coding):
    assert PAYLOAD_BITPACKED == 0
    with pytest.raises(FormatError, match=f"payload coding {coding}"):
        loads(build3(payload=b"\x12", coding=coding))
    with pytest.raises(FormatError, match=f"payload coding {coding}"):
        read_header(io.BytesIO(build3(coding=coding)))  # refused before any payload is read


@pytest.mark.parametrize("kw,match", [
    (dict(model=b""), "empty model id"),
    (dict(model=b"\xc3\x28"), "not UTF-8"),
    (dict(model=b"a\nb"), "printable"),
    (dict(model=b"x" * 65), "characters"),
    (dict(hash_digits=65, hash_bytes=b"\0" * 33), "at most 64"),
    (dict(hash_digits=255, hash_bytes=b"\0" * 128), "at most 64"),
    (dict(hash_digits=3, hash_bytes=b"\x12\x34"), "padding"),
    (dict(hash_digits=16, hash_bytes=b"\x01" * 9), "CRC"),  # a hash byte too many: the CRC is off by one
])
def test_format3_bad_strings(kw, match):
    with pytest.raises(FormatError, match=match):
        loads(build3(payload=b"\x12", **kw))


def test_format3_hash_of_any_digit_count_round_trips():
    for digits in ("", "a", "0f", "abc", "0123456789abcdef", "f" * 63, "e" * 64):
        h = make_header(model_hash=digits)
        assert loads(dumps(h, random_codes(h)))[0].model_hash == digits
    assert loads(build3(payload=b"\x12", hash_digits=3, hash_bytes=b"\x12\x30"))[0].model_hash == "123"


def test_format3_damaged_header_is_a_crc_error_before_the_payload():
    good = build3(payload=b"\x12")
    for i in range(5, len(good) - 4 - 1 - 4):  # every header byte after the version
        bad = bytearray(good)
        bad[i] ^= 0x10
        with pytest.raises(FormatError):
            loads(bytes(bad))


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_format3_random_header_bytes_only_raise_format_error(tail):
    with pytest.raises(FormatError):
        loads(MAGIC + b"\x03" + tail)


@given(fixed=st.binary(min_size=FIXED3.size, max_size=FIXED3.size), model=st.binary(min_size=1, max_size=70),
       digits=st.integers(0, 64), payload=st.binary(max_size=40))
@settings(max_examples=300, deadline=None)
def test_format3_random_fields_with_good_crcs_decode_or_raise_format_error(fixed, model, digits, payload):
    data = build3(fixed=fixed, model=model, hash_digits=digits, hash_bytes=b"\0" * ((digits + 1) // 2),
                  payload=payload)
    try:
        h, codes = loads(data)
    except FormatError:
        return
    assert codes.shape == (h.channels, h.n_q, h.frames) and dumps(h, codes) == data


# ----- gains (format 2) --------------------------------------------------------------------------
GAINED = make_header(channels=2, n_q=2, frames=7, bits=5, length=700, original_sample_rate=16000, gain_frames=3)


def random_gains(h: Header, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=(h.channels, h.gain_blocks)).astype(np.int8)


@pytest.mark.parametrize("version", [2, 3])
def test_gains_round_trip_and_size(version):
    codes, gains = random_codes(GAINED, 2), random_gains(GAINED, 3)
    assert GAINED.gain_blocks == 3 and GAINED.num_gains == 6  # ceil(7 / 3) blocks, the last one short
    data = dumps(GAINED, codes, gains, version=version)
    plain = make_header(**{**vars(GAINED), "gain_frames": 0})
    assert len(data) == rcq_size(GAINED, version) == rcq_size(plain, version) + 6  # one byte per gain
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


@pytest.mark.parametrize("version", [2, 3])
def test_every_damaged_gain_byte_is_a_format_error(version):
    data = dumps(GAINED, random_codes(GAINED, 2), random_gains(GAINED, 3), version=version)
    start = len(data) - 4 - packed_size(GAINED.num_codes, GAINED.bits) - GAINED.num_gains
    for i in range(start, start + GAINED.num_gains):
        for b in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << b
            with pytest.raises(FormatError, match="CRC"):
                loads_gains(bytes(bad))


@pytest.mark.parametrize("version", [2, 3])
def test_gain_count_the_file_cannot_hold_fails_before_allocating(version):
    # a header claiming one gain block per frame of 2**30 frames, in a 300-byte file
    if version == 2:
        data = build(make_header(frames=2**30, length=0, n_q=1, bits=1, gain_frames=1).to_json(), b"\0" * 50)
    else:
        data = build3(frames=2**30, bits=1, gain_frames=1, payload=b"\0" * 50)
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="truncated"):
            loads_gains(data)
        assert tracemalloc.get_traced_memory()[1] < 10**6
    finally:
        tracemalloc.stop()
    gained = dumps(GAINED, random_codes(GAINED), random_gains(GAINED), version=version)
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


# ----- committed fixtures: formats 2 and 3 read the same codes and gains, bit for bit ---------------
def test_format2_and_format3_fixtures_read_the_same_codes_and_gains():
    v2, v3 = (DATA / "v2_micro.rcq").read_bytes(), (DATA / "v3_micro.rcq").read_bytes()
    assert v2[4] == 2 and v3[4] == 3 and len(v3) < len(v2)
    codes, gains = np.load(DATA / "v2_micro.codes.npy"), np.load(DATA / "v2_micro.gains.npy")
    h2, codes2, gains2 = loads_gains(v2)
    h3, codes3, gains3 = loads_gains(v3)
    assert h2 == h3 and h3.gain_frames == 50 and h3.model == "micro@1"
    for c, g in ((codes2, gains2), (codes3, gains3)):
        assert np.array_equal(c, codes) and np.array_equal(g, gains) and g.dtype == np.int8
    # both writers still write these bytes exactly
    assert dumps(h2, codes, gains, version=2) == v2 and dumps(h3, codes, gains) == v3


def test_fixtures_decode_to_the_same_audio():
    rotcodec = pytest.importorskip("rotcodec")
    model = rotcodec.load_model(DATA / "v1_micro.pt")
    wav2, sr2 = rotcodec.decompress((DATA / "v2_micro.rcq").read_bytes(), model)
    wav3, sr3 = rotcodec.decompress((DATA / "v3_micro.rcq").read_bytes(), model)
    assert sr2 == sr3 == 44100 and wav3.shape == (2, 13230) and torch.equal(wav2, wav3)
