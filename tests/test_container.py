"""The .rcq container: round trips, exact sizes, and FormatError for every malformed input.

Formats 2 (JSON header), 3 (binary header) and 4 (compact binary header, the default) are all
written and attacked here; the committed fixtures of formats 1-4 are in tests/data (see its README)."""

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
    FORMAT_VERSION, KNOWN_MODELS, MAGIC, PAYLOAD_BITPACKED, Header, dumps, loads, loads_gains, peek_version,
    rcq_size, read_header, read_rcq, write_rcq,
)
from rotcodec.io.container import _varint as varint

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


def build4(flags: int = 0x28, shape: int | None = None, sr=16000, orig=None, hop=320, fps=None, frames=2,
           length=640, chunk=0, overlap=0, gain=0, model: bytes = bytes([12]) + b"speech16k-v1",
           hash_part: bytes = bytes.fromhex("0123456789abcdef"), payload: bytes = b"\x12", channels=1, n_q=1,
           bits=4) -> bytes:
    """Assemble a format-4 file from raw values with valid CRCs. Numbers are varints (bytes: as given);
    the default flags are SAME_RATE | HASH16 and the model id is text, as the module docstring lists."""
    num = lambda v: v if isinstance(v, bytes) else varint(v)  # noqa: E731
    shape = (channels - 1) | (n_q - 1) << 6 | (bits - 1) << 12 if shape is None else shape
    head = (MAGIC + b"\x04" + bytes([flags]) + struct.pack("<H", shape) + num(sr)
            + (b"" if orig is None else num(orig)) + (num(hop) if fps is None else struct.pack("<d", fps))
            + b"".join(num(v) for v in (frames, length, chunk, overlap, gain)) + model + hash_part)
    return head + struct.pack("<I", zlib.crc32(head)) + payload + struct.pack("<I", zlib.crc32(payload))


SMALL = make_header(channels=2, n_q=2, frames=3, bits=5, length=300, original_sample_rate=16000)
SMALL_FILE = dumps(SMALL, random_codes(SMALL, 1))
SMALL_FILE_V2 = dumps(SMALL, random_codes(SMALL, 1), version=2)
SMALL_FILE_V3 = dumps(SMALL, random_codes(SMALL, 1), version=3)
ALL_FILES = pytest.mark.parametrize("data", [SMALL_FILE, SMALL_FILE_V3, SMALL_FILE_V2], ids=["v4", "v3", "v2"])


def test_varints_are_unsigned_leb128():  # the vectors of the LEB128 definition, so varint below is right
    for n, raw in ((0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"), (16383, "ff7f"),
                   (16384, "808001"), (2**64 - 1, "ffffffffffffffffff01")):
        assert varint(n) == bytes.fromhex(raw)


def v4_header_len(h: Header) -> int:
    """Format 4's header after the version byte, without its CRC, as the module docstring lists it."""
    n = 1 + 2 + len(varint(h.sample_rate))
    n += 0 if h.original_sample_rate == h.sample_rate else len(varint(h.original_sample_rate))
    hop = h.sample_rate / h.frame_rate
    n += len(varint(int(hop))) if hop == int(hop) else 8
    n += sum(len(varint(v)) for v in (h.frames, h.length, h.chunk_frames, h.chunk_overlap, h.gain_frames))
    name, _, version = h.model.rpartition("@")
    known = name in KNOWN_MODELS and version.isascii() and version.isdecimal() and str(int(version)) == version
    n += 1 + len(varint(int(version))) if known and int(version) < 2**32 else 1 + len(h.model.encode())
    return n + (8 if len(h.model_hash) == 16 else 1 + math.ceil(len(h.model_hash) / 2))


@pytest.mark.parametrize(
    "kw",
    [{}, dict(channels=2, n_q=3, frames=7, bits=1), dict(channels=6, n_q=32, frames=11, bits=16),
     dict(frames=0, length=0), dict(chunk_frames=250, chunk_overlap=10, model_hash="")],
)
@pytest.mark.parametrize("version", [2, 3, 4])
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
    elif version == 3:  # fixed fields, then the model id and the hash, each after its length byte
        header_len = FIXED3.size + 1 + len(h.model.encode()) + 1 + math.ceil(len(h.model_hash) / 2)
    else:
        header_len = v4_header_len(h)
    expected = 4 + 1 + header_len + 4 + packed_size(codes.size, h.bits) + 4
    assert len(data) == expected == rcq_size(h, version)


def test_default_is_format_4():
    assert FORMAT_VERSION == 4 and SMALL_FILE[4] == 4 and rcq_size(SMALL) == len(SMALL_FILE)
    assert dumps(SMALL, random_codes(SMALL, 1), version=4) == SMALL_FILE and SMALL_FILE_V3[4] == 3


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


def test_a_2_s_clip_at_6_kbps_is_within_3_percent_of_6_kbps():
    """The bundled model's header (its id, a 16-digit hash, as compress writes it for a 2 s clip at
    16 kHz): 34 bytes from the magic through the header CRC in format 4, 72 in format 3, 185 in
    format 2; with the gains and the payload CRC the file is 1,540 bytes, 6.16 kbps."""
    h = make_header(model="stft16k-cpu@1", n_q=12, frames=100, length=32000, original_sample_rate=16000,
                    chunk_frames=250, chunk_overlap=20, gain_frames=50)
    codes, gains = random_codes(h), np.zeros((1, 2), np.int8)
    payload = 1500  # 2 s at 6 kbps
    assert len(dumps(h, codes, gains)) - payload == 34 + 2 + 4 == v4_header_len(h) + 5 + 4 + 2 + 4
    assert len(dumps(h, codes, gains)) <= 1.03 * payload
    assert len(dumps(h, codes, gains, version=3)) - payload == 72 + 2 + 4
    assert len(dumps(h, codes, gains, version=2)) - payload == 185 + 2 + 4
    at44 = make_header(**{**vars(h), "original_sample_rate": 44100, "length": 88200})  # a 44.1 kHz input
    assert len(dumps(at44, codes, gains)) <= 1.03 * payload


def test_writer_refuses_what_format_3_cannot_hold():
    for kw in (dict(frames=2**32, length=0, n_q=1), dict(chunk_frames=2**32), dict(chunk_overlap=2**16),
               dict(gain_frames=2**16), dict(model="\U0001f600" * 64)):
        h = make_header(**kw)
        with pytest.raises(ValueError, match="format 3"):
            rcq_size(h, version=3)
        assert rcq_size(h, version=2) > 0  # format 2 still holds them
        if "model" not in kw:  # format 4 too, but for a model id over 255 bytes
            assert rcq_size(h) > 0
    with pytest.raises(ValueError, match="format 4"):
        rcq_size(make_header(model="\U0001f600" * 64))
    h = make_header(frames=2**32 - 1, length=0, n_q=1, chunk_frames=2**32 - 1, chunk_overlap=2**16 - 1,
                    gain_frames=2**16 - 1, model="\U0001f600" * 63)
    assert rcq_size(h, version=3) > 0  # the largest values that fit
    for version in (1, 5, "3", True, None):
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


@ALL_FILES
def test_every_truncation_is_format_error(data):
    for n in range(len(data)):
        with pytest.raises(FormatError):
            loads(data[:n])


@ALL_FILES
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
    for good in (SMALL_FILE, SMALL_FILE_V3, SMALL_FILE_V2):  # each file called by another format's number
        for version in {2, 3, 4} - {good[4]}:
            with pytest.raises(FormatError):
                loads(good[:4] + bytes([version]) + good[5:])
    with pytest.raises(FormatError, match="wrong magic"):
        peek_version(io.BytesIO(b"RIFF\x03"))


def test_trailing_garbage_is_format_error():
    for data in (SMALL_FILE, SMALL_FILE_V3, SMALL_FILE_V2):
        with pytest.raises(FormatError, match="after the payload"):
            loads(data + b"\0")


@pytest.mark.parametrize("version", [2, 3, 4])
def test_huge_claim_in_tiny_file_fails_fast(version):
    if version == 2:
        data = build(make_header(frames=2**30, length=0).to_json(), b"\0" * 50)
    elif version == 3:
        data = build3(frames=2**30, n_q=8, bits=10, payload=b"\0" * 50)
    else:
        data = build4(frames=2**30, n_q=8, bits=10, payload=b"\0" * 50)
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
    with pytest.raises(FormatError, match="exceeds"):
        loads(build4(frames=2**32 - 1, channels=64, n_q=64))
    with pytest.raises(FormatError, match="frames"):
        loads(build4(frames=2**69))


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


@given(st.sampled_from([SMALL_FILE, SMALL_FILE_V3, SMALL_FILE_V2]), st.integers(0, 400),
       st.binary(min_size=1, max_size=8))
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


@pytest.mark.parametrize("version", [2, 3, 4])
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


@pytest.mark.parametrize("version", [2, 3, 4])
def test_every_damaged_gain_byte_is_a_format_error(version):
    data = dumps(GAINED, random_codes(GAINED, 2), random_gains(GAINED, 3), version=version)
    start = len(data) - 4 - packed_size(GAINED.num_codes, GAINED.bits) - GAINED.num_gains
    for i in range(start, start + GAINED.num_gains):
        for b in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << b
            with pytest.raises(FormatError, match="CRC"):
                loads_gains(bytes(bad))


@pytest.mark.parametrize("version", [2, 3, 4])
def test_gain_count_the_file_cannot_hold_fails_before_allocating(version):
    # a header claiming one gain block per frame of 2**30 frames, in a 300-byte file
    if version == 2:
        data = build(make_header(frames=2**30, length=0, n_q=1, bits=1, gain_frames=1).to_json(), b"\0" * 50)
    elif version == 3:
        data = build3(frames=2**30, bits=1, gain_frames=1, payload=b"\0" * 50)
    else:
        data = build4(frames=2**30, bits=1, gain=1, payload=b"\0" * 50)
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


# ----- committed fixtures: formats 2, 3 and 4 read the same codes and gains, bit for bit ------------
def test_format2_3_and_4_fixtures_read_the_same_codes_and_gains():
    files = {v: (DATA / f"v{v}_micro.rcq").read_bytes() for v in (2, 3, 4)}
    assert [files[v][4] for v in (2, 3, 4)] == [2, 3, 4] and len(files[4]) < len(files[3]) < len(files[2])
    codes, gains = np.load(DATA / "v2_micro.codes.npy"), np.load(DATA / "v2_micro.gains.npy")
    read = {v: loads_gains(data) for v, data in files.items()}
    assert read[2][0] == read[3][0] == read[4][0] and read[4][0].gain_frames == 50 and read[4][0].model == "micro@1"
    for _, c, g in read.values():
        assert np.array_equal(c, codes) and np.array_equal(g, gains) and g.dtype == np.int8
    # every writer still writes these bytes exactly
    for v, data in files.items():
        assert dumps(read[v][0], codes, gains, version=v) == data


def test_fixtures_decode_to_the_same_audio():
    rotcodec = pytest.importorskip("rotcodec")
    model = rotcodec.load_model(DATA / "v1_micro.pt")
    (wav2, sr2), (wav3, sr3), (wav4, sr4) = (rotcodec.decompress((DATA / f"v{v}_micro.rcq").read_bytes(), model)
                                             for v in (2, 3, 4))
    assert sr2 == sr3 == sr4 == 44100 and wav4.shape == (2, 13230)
    assert torch.equal(wav2, wav3) and torch.equal(wav2, wav4)


# ----- format 4: the compact header, each value in one encoding ---------------------------------------
FOUR = make_header(frames=2, n_q=1, bits=4, length=640, original_sample_rate=16000)


def test_build4_makes_a_valid_file():
    h, codes = loads(build4())
    assert h == FOUR and codes.tolist() == [[[1, 2]]]
    assert build4() == dumps(FOUR, codes)


@pytest.mark.parametrize("model,known", [
    ("stft16k-cpu@1", True), ("audio24k-cpu@7", True), ("speech16k-cpu@4294967295", True),
    ("stft16k-cpu@01", False), ("stft16k-cpu@4294967296", False), ("stft16k-cpu", False),
    ("stft16k-cpu@", False), ("stft16k-cpu@\u0661", False), ("mine@1", False), ("a@b@1", False),
])
def test_format4_model_ids_round_trip_and_bundled_names_take_two_bytes(model, known):
    h = make_header(model=model)
    data = dumps(h, random_codes(h))
    assert loads(data)[0].model == model
    assert bool(data[5] & 0x04) is known
    assert len(data) == rcq_size(h) == 4 + 1 + v4_header_len(h) + 4 + packed_size(h.num_codes, h.bits) + 4


def test_format4_frame_rates_and_hashes_round_trip():
    for fps, sr in ((50.0, 16000), (75.0, 24000), (49.9, 16000), (1e6, 1_000_000), (1e-3, 1), (3.0, 10)):
        h = make_header(frame_rate=fps, sample_rate=sr)
        data = dumps(h, random_codes(h))
        assert loads(data)[0] == h and bool(data[5] & 0x10) is (sr / fps != int(sr / fps))
    for digits in ("", "a", "0f", "abc", "0123456789abcdef", "0123456789abcde", "f" * 64):
        h = make_header(model_hash=digits)
        data = dumps(h, random_codes(h))
        assert loads(data)[0].model_hash == digits and bool(data[5] & 0x20) is (len(digits) == 16)


@pytest.mark.parametrize("kw,match", [
    (dict(hop=0), "hop"),
    (dict(flags=0x28 | 0x80), "flags 0xa8; upgrade"),
    (dict(flags=0x28 | 0x02), "payload coding 2"),
    (dict(flags=0x28 | 0x03), "payload coding 3"),
    (dict(flags=0x2C, model=b"\x00\x01"), "model number 0"),
    (dict(flags=0x2C, model=bytes([len(KNOWN_MODELS) + 1, 1])), f"model number {len(KNOWN_MODELS) + 1}"),
    (dict(model=b"\x00"), "empty model id"),
    (dict(model=b"\x02\xc3\x28"), "not UTF-8"),
    (dict(model=b"\x03a\nb"), "printable"),
    (dict(sr=0), "sample_rate"),
    (dict(sr=2**40), "sample_rate"),
    (dict(orig=0, flags=0x20), "original_sample_rate"),
    (dict(fps=math.nan, flags=0x38), "frame_rate"),
    (dict(fps=0.0, flags=0x38), "frame_rate"),
    (dict(length=2**60), "length"),
    (dict(sr=b"\x80" * 10 + b"\x01"), "more than 10 bytes"),
    (dict(flags=0x08, hash_part=bytes([65]) + b"\0" * 33), "at most 64"),
    (dict(flags=0x08, hash_part=b"\x03\x12\x34"), "padding"),
])
def test_format4_bad_values_are_format_errors(kw, match):
    with pytest.raises(FormatError, match=match):
        loads(build4(**kw))


@pytest.mark.parametrize("kw", [
    dict(frames=b"\x82\x00"),                                  # a varint longer than needed
    dict(sr=b"\x80\xfd\x00"),
    dict(flags=0x20, orig=16000),                               # the input's rate given, equal to the model's
    dict(fps=50.0, flags=0x38),                                 # a float frame rate that a hop holds
    dict(flags=0x08, hash_part=b"\x10" + bytes.fromhex("0123456789abcdef")),  # 16 digits without HASH16
    dict(model=bytes([13]) + b"stft16k-cpu@1"),                  # a known model's id as text
    dict(flags=0x28 | 0x40),                                    # KNOWN_CTX on a bit-packed file
])
def test_format4_values_in_another_encoding_are_refused(kw):
    with pytest.raises(FormatError, match="one encoding"):
        loads(build4(**kw))


def test_every_bundled_model_has_a_number():
    models = pytest.importorskip("rotcodec.models")
    assert set(models.bundled_models()) <= set(KNOWN_MODELS)
    assert KNOWN_MODELS[:3] == ("stft16k-cpu", "speech16k-cpu", "audio24k-cpu")  # numbers never change


@given(flags=st.integers(0, 255), shape=st.integers(0, 2**16 - 1),
       numbers=st.lists(st.integers(0, 2**40), min_size=8, max_size=8), model=st.binary(min_size=1, max_size=20),
       payload=st.binary(max_size=40))
@settings(max_examples=300, deadline=None)
def test_format4_random_fields_with_good_crcs_decode_or_raise_format_error(flags, shape, numbers, model, payload):
    sr, orig, hop, frames, length, chunk, overlap, gain = numbers
    data = build4(flags=flags, shape=shape, sr=sr % 2**20, orig=None if flags & 0x08 else orig, hop=hop % 2**10,
                  frames=frames % 64, length=length, chunk=chunk, overlap=overlap, gain=gain % 8,
                  fps=struct.unpack("<d", struct.pack("<Q", hop))[0] if flags & 0x10 else None,
                  model=model, hash_part=b"\0" * 8 if flags & 0x20 else b"\x10" + b"\0" * 8, payload=payload)
    try:
        h, codes, gains = loads_gains(data)
    except FormatError:
        return
    assert codes.shape == (h.channels, h.n_q, h.frames) and dumps(h, codes, gains) == data


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_format4_random_header_bytes_only_raise_format_error(tail):
    with pytest.raises(FormatError):
        loads(MAGIC + b"\x04" + tail)
