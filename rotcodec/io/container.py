"""The ``.rcq`` token file: a small validated header plus bit-packed codes, CRC-protected.

Upper layer of the file format (``bitpack.py`` is the lower one); works on any ``IO[bytes]``
and never imports the model. Every format starts with the same five bytes::

    magic        4 bytes  b"RCQ\\x89"
    version      uint8    1 to 4 (writers write FORMAT_VERSION = 4 unless told otherwise)

Format 4 (the default): format 3's fields, most as unsigned LEB128 varints (7 bits a byte, low
first, high bit = more follow; at most 10 bytes), and short forms chosen by a flags byte. The
bundled model's header is 34 bytes with its CRC (format 3: 72; format 2: 185), so a 2 s clip at
6 kbps is 1,540 bytes, 6.16 kbps real::

    flags        uint8    bits 0-1 coding (as format 3; 2 and 3 are a FormatError);
                          bit 2 KNOWN_MODEL: the model id is a number from KNOWN_MODELS;
                          bit 3 SAME_RATE: the input's rate is the model's (no orig_sr);
                          bit 4 FLOAT_FPS: the frame rate is a float64 (else sample_rate / hop);
                          bit 5 HASH16: the weights hash has 16 hex digits, 8 bytes without a
                          length byte; bit 6 KNOWN_CTX (coding 1 only): the context model and
                          its hash are a number from KNOWN_CONTEXT_MODELS; bit 7 must be 0
    shape        uint16   channels - 1 | (n_q - 1) << 6 | (bits - 1) << 12
    sample_rate  varint
    orig_sr      varint   unless SAME_RATE
    hop          varint   >= 1, frame_rate = sample_rate / hop (FLOAT_FPS: frame_rate float64)
    frames, length, chunk_frames, chunk_overlap, gain_frames: varints
    model        KNOWN_MODEL: uint8 number n (1..len(KNOWN_MODELS)) and a varint version v, the id
                          "<KNOWN_MODELS[n - 1]>@<v>"; else model_len uint8 (>= 1) and UTF-8
    hash         HASH16: 8 bytes; else hash_len and the packed digits as format 3
    (coding 1 only:) KNOWN_CTX: uint8 number n (1..len(KNOWN_CONTEXT_MODELS)), the context model
                          and hash KNOWN_CONTEXT_MODELS[n - 1]; else ctx_len, ctx_model,
                          ctx_hash_len, ctx_hash as format 3; then payload_size as format 3
    header_crc   uint32   zlib.crc32 of every byte from the magic to here
    gains, payload, payload_crc as format 3

Each header has one encoding: the writer takes every short form that applies (the shortest
varint, SAME_RATE, the hop, KNOWN_MODEL, HASH16, KNOWN_CTX) and the reader refuses any other bytes
for the same values, with one exception: an entropy-coded header of a known context model in the
long form (id and hash), as rotcodec wrote format 4 before KNOWN_CTX, is read (never written).
KNOWN_MODELS and KNOWN_CONTEXT_MODELS only grow, so a number names the same model in every
rotcodec; the weights hash is the check that the model decoding a file is the one that made it.
An entropy-coded header with a known context model is 3 bytes longer than the bit-packed one of
the same codes when its payload is 128 bytes to 16 KiB (the long form: 8). At most
5 + 1 + 2 + 8 * 10 + 256 + 33 + 256 + 33 + 5 + 4 = 675 bytes.

Format 3 (issue 38's first binary header; read, and written with ``version=3``), little endian,
fixed-width ``struct`` fields::

    coding       uint8    how the payload is coded: 0 = bit-packed codes (PAYLOAD_BITPACKED),
                          1 = entropy-coded with a context model (PAYLOAD_ENTROPY, see below);
                          any other value is a FormatError
    channels     uint8    C, 1..64
    n_q          uint8    stages, 1..64
    bits         uint8    bits per code, 1..16
    sample_rate  uint32   the model's rate in Hz
    orig_sr      uint32   the input audio's rate in Hz
    frame_rate   float64  code frames per second (exact: the value the model reports)
    frames       uint32   F, code frames per channel
    length       uint64   original length in samples at orig_sr
    chunk_frames uint32   frames per independently coded chunk (0 = not chunked)
    chunk_overlap uint16  context between chunks, in frames
    gain_frames  uint16   frames per gain block (0 = no gains)
    model_len    uint8    bytes of the model id, 1..255
    model        model_len bytes of UTF-8 (the id, e.g. "stft16k-cpu@1")
    hash_len     uint8    hex digits of the weights hash, 0..64
    hash         ceil(hash_len / 2) bytes: the digits two per byte, high nibble first (an odd
                          count leaves the last low nibble 0). The whole hash that
                          ``rotcodec.model.loading.weights_hash`` gives (16 digits, 8 bytes) is
                          stored, so the check against the model is the full check of format 2.
    (coding 1 only:)
    ctx_len      uint8    bytes of the context model's id, 0..255; 0 = the model's own context
                          model, ``<model id up to "@">.entropy`` ("stft16k-cpu.entropy" for
                          "stft16k-cpu@1": rotcodec/pretrained/<id>.npz)
    ctx_model    ctx_len bytes of UTF-8
    ctx_hash_len uint8    hex digits of the context model's hash, 0..64, packed as the weights hash
    ctx_hash     ceil(ctx_hash_len / 2) bytes
    payload_size 1..5 bytes: bytes of the payload as an unsigned LEB128 varint (at most
                          4 * frames * channels * n_q + 8)
    header_crc   uint32   zlib.crc32 of every byte from the magic to the end of the hash (coding 1:
                          to the end of payload_size)
    gains        as in format 2
    payload      coding 0: as in format 2; coding 1: the codes range-coded frame by frame, stage by
                          stage, channel by channel under the integer tables of the context model
                          (:mod:`rotcodec.entropy.payload`)
    payload_crc  uint32   zlib.crc32(gains + payload)
    (end of file; trailing bytes are an error)

The header is self-delimiting, each length read from one byte, and with its CRC at most
5 + 40 + 256 + 33 + 256 + 33 + 5 + 4 = 632 bytes, so nothing larger is read before the header CRC
is checked. Reading an entropy-coded payload needs its context model: :func:`read_rcq_gains` takes
it as ``context_model``, or finds the one the header names among the registered and bundled ones
(:func:`rotcodec.entropy.bundled.find`, numpy only); a missing one is a FormatError that names it.
Header values a format-3 field cannot hold (frames or chunk_frames >= 2**32, chunk_overlap or gain_frames >=
2**16, a model id over 255 UTF-8 bytes) are refused by the writer with ValueError; such files
can still be written as format 2 (``version=2``).

Format 2, after the version byte::

    header_len   uint32   length of the JSON header in bytes (<= MAX_HEADER_BYTES)
    header       compact UTF-8 JSON object (see Header; short keys keep files near nominal rate)
    header_crc   uint32   zlib.crc32(header)
    gains        channels * ceil(frames / gain_frames) int8 gain codes (none when gain_frames is 0)
    payload      packed_size(frames * channels * n_q, bits) bytes of bit-packed codes
    payload_crc  uint32   zlib.crc32(gains + payload)
    (end of file; trailing bytes are an error)

Codes are ``[C, n_q, F]`` (channels, stages, frames) in the API and stored frame-major,
i.e. as ``[F, C, n_q]`` flattened in C order, so a streaming reader can decode frames in order.
Gains are ``[C, B]`` (one code per channel and gain block of ``gain_frames`` frames, the last
block possibly short; ``gain_db = code * 0.5``, see :mod:`rotcodec.coding.conditioning`) and are
stored block-major, as ``[B, C]``. They cost one byte per channel and second at 50 frames/s.

Format 1 (files written before gains) is format 2 without the header key ``g`` (gain_frames) and without
the gains: such a file reads as ``gain_frames = 0``, no gains, and decodes as it always did.
Formats 1 and 2 are read as they always were; format 2 can still be written (``version=2``).

Every malformed input raises :class:`~rotcodec.errors.FormatError` and nothing else, and the
reader checks the payload size the header claims against the real stream before allocating it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import numbers
import re
import struct
import sys
import zlib
from typing import IO, Any

import numpy as np

from rotcodec.errors import FormatError
from rotcodec.io.bitpack import pack_codes, packed_size, unpack_codes

__all__ = [
    "FORMAT_VERSION", "MAGIC", "MAX_HEADER_BYTES", "MAX_CODES", "PAYLOAD_BITPACKED", "PAYLOAD_ENTROPY", "Header",
    "dumps", "loads", "loads_gains", "peek_version", "rcq_size", "read_header", "read_rcq", "read_rcq_gains",
    "write_rcq",
]

MAGIC = b"RCQ\x89"
FORMAT_VERSION = 4
"""The format writers write by default; every version from 1 up to it is read."""
_WRITABLE = (2, 3, 4)
_V1_FIELDS = ("gain_frames",)  # fields a format-1 header lacks (they read as 0)
MAX_HEADER_BYTES = 16384
"""Largest JSON header (formats 1 and 2) in bytes."""
_MAGIC_VERSION = struct.Struct("<4sB")
_JSON_LEN = struct.Struct("<I")  # formats 1-2: header_len
_CRC = struct.Struct("<I")
_BYTE = struct.Struct("<B")
# Format 3: coding, channels, n_q, bits, sample_rate, orig_sr, frame_rate, frames, length,
# chunk_frames, chunk_overlap, gain_frames (see the module docstring).
_FIXED3 = struct.Struct("<BBBBIIdIQIHH")
_FIXED3_FIELDS = ("channels", "n_q", "bits", "sample_rate", "original_sample_rate", "frame_rate", "frames",
                  "length", "chunk_frames", "chunk_overlap", "gain_frames")
_FIXED3_LIMITS = {"frames": 2**32 - 1, "chunk_frames": 2**32 - 1, "chunk_overlap": 2**16 - 1,
                  "gain_frames": 2**16 - 1}  # the fields narrower than Header's own range
PAYLOAD_BITPACKED = 0
"""Format-3 payload coding 0: the codes bit-packed by :mod:`rotcodec.io.bitpack`."""
PAYLOAD_ENTROPY = 1
"""Format-3 payload coding 1: the codes range-coded under a named context model (:mod:`rotcodec.entropy`)."""
_CODINGS = {PAYLOAD_BITPACKED: "bit-packed", PAYLOAD_ENTROPY: "entropy-coded"}
# Format 4: the flags byte (see the module docstring) and the fields that are not varints.
KNOWN_MODELS = ("stft16k-cpu", "speech16k-cpu", "audio24k-cpu")
"""Model names format 4 writes as a number (position + 1): append only, a name keeps its number."""
KNOWN_CONTEXT_MODELS = (("stft16k-cpu.entropy", "0d7424fc"), ("audio24k-cpu.entropy", "12149b41"))
"""Context models (id, hash) format 4 writes as a number (position + 1, flag KNOWN_CTX): append only;
every context model rotcodec bundles is here (a test checks it)."""
_F4_CODING, _F4_KNOWN_MODEL, _F4_SAME_RATE, _F4_FLOAT_FPS, _F4_HASH16 = 0x03, 0x04, 0x08, 0x10, 0x20
_F4_KNOWN_CTX, _F4_RESERVED = 0x40, 0x80
_SHAPE4 = struct.Struct("<H")  # channels - 1 | (n_q - 1) << 6 | (bits - 1) << 12
_F64 = struct.Struct("<d")
_MAX_VARINT = 10  # bytes: 70 bits, more than any field holds
_MAX_MODEL_VERSION = 2**32 - 1


def _own_context_model(model: str) -> str:
    """The id of a model's own context model (ctx_len 0): ``"stft16k-cpu@1"`` -> ``"stft16k-cpu.entropy"``."""
    return model.split("@")[0] + ".entropy"


def _varint(n: int) -> bytes:
    """``n >= 0`` as an unsigned LEB128 varint (7 bits a byte, low first, high bit = more follow)."""
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


_CHUNK = 1 << 20  # bytes read at a time from a stream, so allocation follows real data


MAX_CODES = 2**34
"""Upper bound on ``frames * channels * n_q`` in one file (a sanity limit, ~20 GB of codes)."""
_MAX_RATE = 1_000_000
_HASH_RE = re.compile(r"[0-9a-f]{0,64}")

# field name -> (JSON key, type, min, max). Short keys keep the fixed overhead near 200 bytes,
# so a 10 s file stays within 3 % of its nominal bitrate.
_FIELDS: dict[str, tuple[str, type, float, float]] = {
    "model": ("model", str, 1, 64),
    "model_hash": ("hash", str, 0, 64),
    "sample_rate": ("sr", int, 1, _MAX_RATE),
    "original_sample_rate": ("orig_sr", int, 1, _MAX_RATE),
    "channels": ("ch", int, 1, 64),
    "n_q": ("n_q", int, 1, 64),
    "bits": ("bits", int, 1, 16),
    "frame_rate": ("fps", float, 0, _MAX_RATE),
    "frames": ("frames", int, 0, MAX_CODES),
    "length": ("len", int, 0, 2**50),
    "chunk_frames": ("chunk", int, 0, MAX_CODES),
    "chunk_overlap": ("overlap", int, 0, MAX_CODES),
    "gain_frames": ("g", int, 0, MAX_CODES),  # one letter: 10 s at 1.5 kbps stay within 1 % of format 1
}
_KEY_TO_FIELD = {key: name for name, (key, *_rest) in _FIELDS.items()}


def _check_field(name: str, value: Any) -> Any:
    """Return ``value`` normalised to its field's type, or raise FormatError naming the field."""
    key, kind, lo, hi = _FIELDS[name]
    where = f"invalid .rcq header: field {key!r} ({name})"
    if kind is str:
        if not isinstance(value, str):
            raise FormatError(f"{where} must be a string, got {type(value).__name__}")
        if not lo <= len(value) <= hi:
            raise FormatError(f"{where} must have {lo}..{hi} characters, got {len(value)}")
        if name == "model_hash" and not _HASH_RE.fullmatch(value):
            raise FormatError(f"{where} must be lowercase hexadecimal, got {value!r}")
        if name == "model" and not value.isprintable():
            raise FormatError(f"{where} must be printable text, got {value!r}")
        return value
    if kind is int:
        # bool is an int subclass and float is not integral: both are refused.
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise FormatError(f"{where} must be an integer, got {type(value).__name__}")
        value = int(value)
        if not lo <= value <= hi:
            raise FormatError(f"{where} must be in {lo}..{hi}, got {value}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise FormatError(f"{where} must be a number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and lo < value <= hi):
        raise FormatError(f"{where} must be a finite number in ({lo}, {hi}], got {value}")
    return value


@dataclasses.dataclass(frozen=True)
class Header:
    """Everything a decoder needs to know about the codes of one ``.rcq`` file.

    Constructing a Header validates it (FormatError naming the bad field), so every Header
    instance is valid. Ints may be numpy integers; they are stored as Python ints.

    Attributes:
        model: id of the model that made the codes (1..64 printable characters).
        model_hash: lowercase hex digest identifying the exact weights (0..64 characters).
        sample_rate: the model's sample rate in Hz (1..1_000_000).
        original_sample_rate: the input audio's sample rate in Hz (1..1_000_000).
        channels: C, audio channels coded independently (1..64).
        n_q: residual VQ stages kept (1..64).
        bits: bits per code, log2 of the codebook size (1..16).
        frame_rate: code frames per second at ``sample_rate`` (> 0).
        frames: F, code frames per channel (>= 0).
        length: original length in samples at ``original_sample_rate`` (>= 0).
        chunk_frames: frames per independently coded chunk (0 = not chunked).
        chunk_overlap: overlap between consecutive chunks, in frames (>= 0).
        gain_frames: frames per gain block (0 = the file carries no gains: decode at the
            model's reference level). Absent from format-1 headers, which read as 0.
        coding: how the payload is coded (format 3 only): ``PAYLOAD_BITPACKED`` (0) or
            ``PAYLOAD_ENTROPY`` (1).
        context_model: coding 1: id of the context model (1..255 printable characters);
            coding 0: empty.
        context_hash: coding 1: its :attr:`~rotcodec.entropy.model.IntContextModel.digest`
            (lowercase hex, 0..64 characters); coding 0: empty.
    """

    model: str
    model_hash: str
    sample_rate: int
    original_sample_rate: int
    channels: int
    n_q: int
    bits: int
    frame_rate: float
    frames: int
    length: int
    chunk_frames: int = 0
    chunk_overlap: int = 0
    gain_frames: int = 0
    coding: int = PAYLOAD_BITPACKED
    context_model: str = ""
    context_hash: str = ""

    def __post_init__(self) -> None:
        for name in _FIELDS:
            object.__setattr__(self, name, _check_field(name, getattr(self, name)))
        where = "invalid .rcq header: field"
        if (isinstance(self.coding, bool) or not isinstance(self.coding, numbers.Integral)
                or self.coding not in _CODINGS):
            raise FormatError(f"{where} coding must be one of {sorted(_CODINGS)}, got {self.coding!r}")
        object.__setattr__(self, "coding", int(self.coding))
        if not isinstance(self.context_model, str) or not isinstance(self.context_hash, str):
            raise FormatError(f"{where} context_model and context_hash must be strings")
        if self.coding == PAYLOAD_BITPACKED and (self.context_model or self.context_hash):
            raise FormatError(f"{where} context_model: a bit-packed payload names no context model")
        if self.coding == PAYLOAD_ENTROPY:
            if not 1 <= len(self.context_model.encode("utf-8")) <= 255 or not self.context_model.isprintable():
                raise FormatError(f"{where} context_model must be 1..255 bytes of printable text, "
                                  f"got {self.context_model!r}")
            if not _HASH_RE.fullmatch(self.context_hash):
                raise FormatError(f"{where} context_hash must be 0..64 lowercase hex digits, "
                                  f"got {self.context_hash!r}")
        count = self.frames * self.channels * self.n_q
        if count > MAX_CODES:
            raise FormatError(
                f"invalid .rcq header: frames*channels*n_q = {count} exceeds the limit {MAX_CODES}"
            )

    @property
    def num_codes(self) -> int:
        """Number of codes in the payload: ``frames * channels * n_q``."""
        return self.frames * self.channels * self.n_q

    @property
    def gain_blocks(self) -> int:
        """B, gain blocks per channel: ``ceil(frames / gain_frames)`` (0 without gains)."""
        return -(-self.frames // self.gain_frames) if self.gain_frames else 0

    @property
    def num_gains(self) -> int:
        """Number of gain codes (bytes) in the file: ``channels * gain_blocks``."""
        return self.channels * self.gain_blocks

    def to_json(self) -> dict[str, Any]:
        """The header as a JSON-ready dict with the short on-disk keys (fixed order)."""
        return {key: getattr(self, name) for name, (key, *_rest) in _FIELDS.items()}

    @classmethod
    def from_json(cls, obj: Any, version: int = FORMAT_VERSION) -> "Header":
        """Build a Header from a parsed JSON object of a format-``version`` file, strictly.

        Raises:
            FormatError: ``obj`` is not a dict, a key is missing or unknown (a format-1 header
                has no ``gain``), or a value has the wrong type (``true`` is not an int, ``5.0``
                is not an int) or is out of range.
        """
        if not isinstance(obj, dict):
            raise FormatError(f"invalid .rcq header: expected a JSON object, got {type(obj).__name__}")
        fields = {name: spec for name, spec in _FIELDS.items() if version >= 2 or name not in _V1_FIELDS}
        known = {spec[0] for spec in fields.values()}
        unknown = sorted(str(k) for k in obj if k not in known)
        if unknown:
            raise FormatError(f"invalid .rcq header: unknown field(s) {', '.join(map(repr, unknown))}")
        missing = [f"{key!r} ({name})" for name, (key, *_r) in fields.items() if key not in obj]
        if missing:
            raise FormatError(f"invalid .rcq header: missing field(s) {', '.join(missing)}")
        return cls(**{_KEY_TO_FIELD[key]: value for key, value in obj.items()})



def _read_exact(f: IO[bytes], n: int, what: str) -> bytes:
    """Read exactly ``n`` bytes in bounded pieces; FormatError if the stream ends first."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        piece = f.read(min(_CHUNK, n - got))
        if not piece:
            raise FormatError(f"truncated .rcq file: {what} needs {n} bytes, only {got} left")
        parts.append(piece)
        got += len(piece)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _remaining(f: IO[bytes]) -> int | None:
    """Bytes left in a seekable stream (position unchanged), or None when not seekable."""
    try:
        if not f.seekable():
            return None
        pos = f.tell()
        end = f.seek(0, io.SEEK_END)
        f.seek(pos, io.SEEK_SET)
    except (OSError, ValueError, AttributeError):
        return None
    return end - pos


def _check_version(version) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version not in _WRITABLE:
        raise ValueError(f"can write .rcq formats {', '.join(map(str, _WRITABLE))}, not {version!r}")
    return version


def _pack_hash(digits: str) -> bytes:
    """A hex digest as format 3 stores it: one length byte, then the digits two per byte."""
    return _BYTE.pack(len(digits)) + bytes.fromhex(digits + "0" * (len(digits) % 2))


def _known_context(header: Header) -> int:
    """The number (1..) of ``header``'s context model in :data:`KNOWN_CONTEXT_MODELS`, else 0."""
    pair = (header.context_model, header.context_hash)
    return KNOWN_CONTEXT_MODELS.index(pair) + 1 if pair in KNOWN_CONTEXT_MODELS else 0


def _encode_header(header: Header, version: int = FORMAT_VERSION, payload_size: int | None = None,
                   known_ctx: bool = True) -> bytes:
    """Everything from the magic to the end of the header CRC, for a format-``version`` file
    (``payload_size``: the payload's bytes, which an entropy-coded header records; ``known_ctx``
    False: format 4's long form of a known context model, which only the reader uses)."""
    if not isinstance(header, Header):
        raise TypeError(f"header must be a Header, got {type(header).__name__}")
    version = _check_version(version)
    ctx_number = _known_context(header) if version == 4 and known_ctx else 0
    if version == 4:
        raw = _encode_v4(header, ctx_number)
    elif version == 2:
        if header.coding != PAYLOAD_BITPACKED:
            raise ValueError("format 2 holds bit-packed codes only; write entropy-coded files as format 3 or 4")
        text = json.dumps(header.to_json(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        raw = text.encode("utf-8")
        return _MAGIC_VERSION.pack(MAGIC, 2) + _JSON_LEN.pack(len(raw)) + raw + _CRC.pack(zlib.crc32(raw))
    else:
        for name, hi in _FIXED3_LIMITS.items():
            if getattr(header, name) > hi:
                raise ValueError(f"{name} = {getattr(header, name)} does not fit format 3 (at most {hi}); "
                                 "write it as format 4 or 2")
        raw = (_MAGIC_VERSION.pack(MAGIC, 3)
               + _FIXED3.pack(header.coding, *(getattr(header, name) for name in _FIXED3_FIELDS))
               + _model_text(header.model, 3) + _pack_hash(header.model_hash))
    if header.coding == PAYLOAD_ENTROPY:
        if payload_size is None or not 0 <= payload_size <= _max_payload(header):
            raise ValueError(f"entropy-coded payload of {payload_size} bytes for {header.num_codes} codes")
        if ctx_number:
            raw += _BYTE.pack(ctx_number) + _varint(payload_size)
        else:
            ctx = b"" if header.context_model == _own_context_model(header.model) else header.context_model.encode()
            raw += _BYTE.pack(len(ctx)) + ctx + _pack_hash(header.context_hash) + _varint(payload_size)
    return raw + _CRC.pack(zlib.crc32(raw))


def _model_text(model: str, version: int) -> bytes:
    """A model id as formats 3 and 4 store it in text: one length byte, then its UTF-8."""
    raw = model.encode("utf-8")
    if len(raw) > 255:
        raise ValueError(f"model id of {len(raw)} UTF-8 bytes does not fit format {version} (at most 255); "
                         "write it as format 2 (version=2)")
    return _BYTE.pack(len(raw)) + raw


def _hop(header: Header) -> int:
    """The samples a frame, when ``frame_rate`` is exactly ``sample_rate / hop`` for an integer hop
    (format 4 then stores the hop), else 0 (it stores the float)."""
    ratio = header.sample_rate / header.frame_rate
    if not math.isfinite(ratio) or not 1 <= ratio < 2**53:
        return 0
    hop = round(ratio)
    return hop if header.sample_rate / hop == header.frame_rate else 0


def _known_model(model: str) -> tuple[int, int] | None:
    """``(number, version)`` of a model id ``"<name>@<version>"`` whose name is in
    :data:`KNOWN_MODELS` and whose version is a plain decimal (as format 4 writes it back), else None."""
    name, at, version = model.rpartition("@")
    if not at or name not in KNOWN_MODELS or not version.isascii() or not version.isdecimal():
        return None
    if str(int(version)) != version or int(version) > _MAX_MODEL_VERSION:
        return None
    return KNOWN_MODELS.index(name) + 1, int(version)


def _encode_v4(header: Header, ctx_number: int = 0) -> bytes:
    """Format 4 from the magic to the end of the weights hash (the entropy fields and the CRC follow;
    ``ctx_number`` > 0 sets KNOWN_CTX)."""
    flags = header.coding | (_F4_KNOWN_CTX if ctx_number else 0)
    out = bytearray(_SHAPE4.pack((header.channels - 1) | (header.n_q - 1) << 6 | (header.bits - 1) << 12))
    out += _varint(header.sample_rate)
    if header.original_sample_rate == header.sample_rate:
        flags |= _F4_SAME_RATE
    else:
        out += _varint(header.original_sample_rate)
    hop = _hop(header)
    if hop:
        out += _varint(hop)
    else:
        flags |= _F4_FLOAT_FPS
        out += _F64.pack(header.frame_rate)
    for name in ("frames", "length", "chunk_frames", "chunk_overlap", "gain_frames"):
        out += _varint(getattr(header, name))
    known = _known_model(header.model)
    if known:
        flags |= _F4_KNOWN_MODEL
        out += _BYTE.pack(known[0]) + _varint(known[1])
    else:
        out += _model_text(header.model, 4)
    if len(header.model_hash) == 16:
        flags |= _F4_HASH16
        out += bytes.fromhex(header.model_hash)
    else:
        out += _pack_hash(header.model_hash)
    return _MAGIC_VERSION.pack(MAGIC, 4) + _BYTE.pack(flags) + bytes(out)


def _max_payload(header: Header) -> int:
    """Largest entropy-coded payload of ``header``'s codes (the field holds at most ``2**32 - 1``)."""
    from rotcodec.entropy.payload import max_payload_size  # numpy only; only entropy-coded files need it

    return min(max_payload_size(header.num_codes), 2**32 - 1)


def rcq_size(header: Header, version: int = FORMAT_VERSION, payload_size: int | None = None) -> int:
    """Exact size in bytes of the ``.rcq`` file :func:`write_rcq` writes for ``header`` (an
    entropy-coded one needs its ``payload_size``)."""
    if header.coding == PAYLOAD_BITPACKED:
        payload_size = packed_size(header.num_codes, header.bits)
    return len(_encode_header(header, version, payload_size)) + _CRC.size + header.num_gains + payload_size


def _as_numpy(codes) -> np.ndarray:
    if isinstance(codes, np.ndarray):
        return codes
    torch = sys.modules.get("torch")  # a tensor implies torch is already imported
    if torch is not None and isinstance(codes, torch.Tensor):
        return codes.detach().cpu().numpy()
    raise TypeError(f"codes must be a numpy array or torch tensor, got {type(codes).__name__}")


def _gain_bytes(header: Header, gains) -> bytes:
    """Gains ``[C, B]`` as the file stores them (int8, block-major); ValueError if they do not fit."""
    if not header.gain_frames:
        if gains is not None and _as_numpy(gains).size:
            raise ValueError("gains given, but the header says gain_frames = 0 (no gains)")
        return b""
    if gains is None:
        raise ValueError(f"the header says gain_frames = {header.gain_frames}, but no gains were given")
    arr = _as_numpy(gains)
    expected = (header.channels, header.gain_blocks)
    if arr.shape != expected:
        raise ValueError(f"gains have shape {tuple(arr.shape)}, header says [C, B] = {expected}")
    if arr.dtype.kind not in "iu" or (arr.size and (int(arr.min()) < -128 or int(arr.max()) > 127)):
        raise ValueError(f"gains must be int8 codes (-128..127), got dtype {arr.dtype}")
    return np.ascontiguousarray(arr.T.astype(np.int8)).tobytes()


def _context_model(header: Header, context_model):
    """The context model for ``header`` (coding 1): ``context_model`` when given, else the bundled
    one the header names; FormatError when its hash is not the header's."""
    from rotcodec.entropy.bundled import find  # numpy only; only entropy-coded files need it

    model = find(header.context_model, header.context_hash) if context_model is None else context_model
    if model.digest != header.context_hash:
        raise FormatError(f"this file was entropy-coded with context model {header.context_model!r} "
                          f"(hash {header.context_hash}), not with the one given (hash {model.digest})")
    return model


def write_rcq(f: IO[bytes], header: Header, codes, gains=None, version: int = FORMAT_VERSION,
              context_model=None) -> int:
    """Write one ``.rcq`` file (format ``version``, by default :data:`FORMAT_VERSION`) to ``f``.

    Args:
        f: binary stream opened for writing.
        header: the validated :class:`Header` describing ``codes``.
        codes: integer numpy array or torch tensor ``[C, n_q, F]`` with
            ``(C, n_q, F) == (header.channels, header.n_q, header.frames)`` and values in
            ``0 .. 2**header.bits - 1``.
        gains: integer array or tensor ``[C, B]`` of int8 gain codes with
            ``B == header.gain_blocks``; required when ``header.gain_frames > 0``, else None.
        version: 3 (the compact binary header) or 2 (the JSON header of older rotcodecs).
        context_model: for ``header.coding == PAYLOAD_ENTROPY``: the
            :class:`~rotcodec.entropy.model.IntContextModel` whose id and digest the header names
            (None: the bundled one of that id).

    Returns:
        Number of bytes written (equal to ``rcq_size(header, version, payload_size)``).

    Raises:
        ValueError: codes or gains of the wrong shape, dtype or range, a version that cannot be
            written, or a header value format 3 cannot hold (a programming error).
    """
    arr = _as_numpy(codes)
    expected = (header.channels, header.n_q, header.frames)
    if arr.shape != expected:
        raise ValueError(f"codes have shape {tuple(arr.shape)}, header says [C, n_q, F] = {expected}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"codes must be integers, got dtype {arr.dtype}")
    gain_bytes = _gain_bytes(header, gains)
    if header.coding == PAYLOAD_ENTROPY:
        from rotcodec.entropy.payload import encode_codes

        model = _context_model(header, context_model)
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= 2**header.bits):
            raise ValueError(f"codes outside 0..{2**header.bits - 1}")
        payload = encode_codes(model, arr)
    else:
        payload = pack_codes(arr.transpose(2, 0, 1), header.bits)  # frame-major [F, C, n_q]
    parts = (
        _encode_header(header, version, len(payload)),
        gain_bytes,
        payload,
        _CRC.pack(zlib.crc32(payload, zlib.crc32(gain_bytes))),
    )
    for part in parts:
        f.write(part)
    return sum(len(p) for p in parts)


def _decode_header(raw: bytes, version: int) -> Header:
    def no_constants(name: str):
        raise FormatError(f"invalid .rcq header: {name} is not allowed")

    def no_duplicates(pairs):
        obj = dict(pairs)
        if len(obj) != len(pairs):
            raise FormatError("invalid .rcq header: duplicate key")
        return obj

    try:
        text = raw.decode("utf-8")
        obj = json.loads(text, parse_constant=no_constants, object_pairs_hook=no_duplicates)
    except UnicodeDecodeError as err:
        raise FormatError(f"invalid .rcq header: not UTF-8 ({err.reason})") from None
    except (ValueError, RecursionError) as err:  # JSONDecodeError, huge int literals, nesting
        if isinstance(err, FormatError):
            raise
        raise FormatError(f"invalid .rcq header: not JSON ({err})") from None
    return Header.from_json(obj, version)


def _read_version(f: IO[bytes]) -> int:
    """Read and check the magic and version byte; return the version (1..FORMAT_VERSION)."""
    prefix = f.read(_MAGIC_VERSION.size)
    if prefix[:4] != MAGIC[: len(prefix[:4])]:
        raise FormatError("not a rotcodec .rcq file (wrong magic bytes)")
    if not prefix:
        raise FormatError("empty input: not a rotcodec .rcq file")
    if len(prefix) < _MAGIC_VERSION.size:
        raise FormatError(f"truncated .rcq file: {len(prefix)} bytes, shorter than the fixed prefix")
    version = prefix[4]
    if version > FORMAT_VERSION:
        raise FormatError(
            f".rcq file made by a newer rotcodec (format {version}); upgrade rotcodec to read it "
            f"(this one reads formats 1 to {FORMAT_VERSION})"
        )
    if version < 1:
        raise FormatError(f"unsupported .rcq format version {version}")
    return version


def peek_version(f: IO[bytes]) -> int:
    """The format version of the ``.rcq`` file at the position of the seekable stream ``f``
    (magic checked; the position is left unchanged). FormatError as :func:`read_header`."""
    start = f.tell()
    try:
        return _read_version(f)
    finally:
        f.seek(start)


def _read_hash(f: IO[bytes], what: str) -> tuple[bytes, str]:
    """A packed hex digest (length byte + digits): ``(its raw bytes, the digits)``."""
    hash_len = _read_exact(f, 1, f"header ({what} length)")
    if hash_len[0] > 64:
        raise FormatError(f"invalid .rcq header: {what} of {hash_len[0]} hex digits (at most 64)")
    packed = _read_exact(f, (hash_len[0] + 1) // 2, f"header ({what})")
    return hash_len + packed, packed.hex()


def _check_hash(digits: str, count: int, what: str) -> str:
    """``digits`` less the padding nibble of an odd ``count`` (which must be 0)."""
    if len(digits) > count:
        if digits[-1] != "0":
            raise FormatError(f"invalid .rcq header: non-zero padding after the {what}")
        digits = digits[:-1]
    return digits


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FormatError(f"invalid .rcq header: {what} is not UTF-8 ({err.reason})") from None


def _read_header_v3(f: IO[bytes]) -> tuple[Header, int | None]:
    """The format-3 header after the version byte, through its CRC (at most 626 bytes read):
    ``(header, payload size)``, the size None for a bit-packed payload (the header implies it)."""
    fixed = _read_exact(f, _FIXED3.size, "header")
    coding = fixed[0]
    model_len = _read_exact(f, 1, "header (model id length)")
    if model_len[0] == 0:
        raise FormatError("invalid .rcq header: empty model id")
    model = _read_exact(f, model_len[0], "header (model id)")
    hash_raw, digits = _read_hash(f, "weights hash")
    raw = _MAGIC_VERSION.pack(MAGIC, 3) + fixed + model_len + model + hash_raw
    tail = _read_context_tail(f) if coding == PAYLOAD_ENTROPY else None
    _check_crc(f, raw + (tail[0] if tail else b""))
    _check_coding(coding)
    model_id = _text(model, "model id")
    _, *values = _FIXED3.unpack(fixed)
    return _with_payload(dict(model=model_id, model_hash=_check_hash(digits, hash_raw[0], "weights hash"),
                              **dict(zip(_FIXED3_FIELDS, values))), coding, tail)


def _read_varint(f: IO[bytes], what: str, limit: int = _MAX_VARINT) -> tuple[bytes, int]:
    """An unsigned LEB128 varint of at most ``limit`` bytes: ``(its bytes, its value)``."""
    raw, value = b"", 0
    for i in range(limit):
        byte = _read_exact(f, 1, f"header ({what})")
        raw += byte
        value |= (byte[0] & 0x7F) << (7 * i)
        if byte[0] < 0x80:
            return raw, value
    raise FormatError(f"invalid .rcq header: {what} of more than {limit} bytes")


def _read_context_tail(f: IO[bytes], known: bool = False) -> tuple[bytes, bytes | None, str, int]:
    """The entropy-coded header's last fields (formats 3 and 4; ``known``: format 4's KNOWN_CTX
    form): ``(their raw bytes, the context model id's bytes (empty: the model's own; None: a
    KNOWN_CTX number this rotcodec does not know), its hash digits, the payload size)``."""
    if known:  # the number is checked after the header CRC (None: not a known number)
        head = _read_exact(f, 1, "header (context model number)")
        ctx_id, digits = KNOWN_CONTEXT_MODELS[head[0] - 1] if 1 <= head[0] <= len(KNOWN_CONTEXT_MODELS) else ("", "")
        ctx = ctx_id.encode() if ctx_id else None
    else:
        ctx_len = _read_exact(f, 1, "header (context model id length)")
        ctx = _read_exact(f, ctx_len[0], "header (context model id)")
        hash_raw, digits = _read_hash(f, "context model hash")
        head, digits = ctx_len + ctx + hash_raw, _check_hash(digits, hash_raw[0], "context model hash")
    size_raw, size = _read_varint(f, "payload size", 5)
    if size_raw != _varint(size):
        raise FormatError("invalid .rcq header: payload size not in its shortest form")
    return head + size_raw, ctx, digits, size


def _check_crc(f: IO[bytes], raw: bytes) -> None:
    (crc,) = _CRC.unpack(_read_exact(f, _CRC.size, "header CRC"))
    if crc != zlib.crc32(raw):
        raise FormatError("corrupt .rcq file: header CRC mismatch")


def _check_coding(coding: int) -> None:
    if coding not in _CODINGS:
        raise FormatError(f"unsupported .rcq payload coding {coding} (this rotcodec reads "
                          + ", ".join(f"{k} = {v}" for k, v in _CODINGS.items()) + "); upgrade rotcodec to read it")


def _with_payload(fields: dict, coding: int, tail) -> tuple[Header, int | None]:
    """The Header of ``fields`` and, for an entropy-coded payload (``tail`` of
    :func:`_read_context_tail`), its coding fields: ``(header, payload size or None)``."""
    if tail is None:
        return Header(**fields), None
    _, ctx, digits, size = tail
    header = Header(**fields, coding=coding, context_hash=digits,
                    context_model=_text(ctx, "context model id") if ctx else _own_context_model(fields["model"]))
    if size > _max_payload(header):
        raise FormatError(f"invalid .rcq header: an entropy-coded payload of {size} bytes for "
                          f"{header.num_codes} codes (at most {_max_payload(header)})")
    return header, size


def _read_header_v4(f: IO[bytes]) -> tuple[Header, int | None]:
    """The format-4 header after the version byte, through its CRC (at most 670 bytes read), as
    :func:`_read_header_v3`. Each value has one encoding: the header :func:`_encode_v4` writes for the
    values read must be the bytes read (shortest varints, the flags' short forms where they apply)."""
    parts = [_MAGIC_VERSION.pack(MAGIC, 4)]

    def take(n: int, what: str) -> bytes:
        parts.append(_read_exact(f, n, f"header ({what})"))
        return parts[-1]

    def number(what: str) -> int:
        raw, value = _read_varint(f, what)
        parts.append(raw)
        return value

    flags = take(1, "flags")[0]
    shape = _SHAPE4.unpack(take(_SHAPE4.size, "shape"))[0]
    fields = dict(channels=(shape & 63) + 1, n_q=(shape >> 6 & 63) + 1, bits=(shape >> 12) + 1)
    fields["sample_rate"] = number("sample rate")
    fields["original_sample_rate"] = fields["sample_rate"] if flags & _F4_SAME_RATE else number("original rate")
    frame_rate = _F64.unpack(take(8, "frame rate"))[0] if flags & _F4_FLOAT_FPS else None
    hop = None if frame_rate is not None else number("hop")
    for name in ("frames", "length", "chunk_frames", "chunk_overlap", "gain_frames"):
        fields[name] = number(name.replace("_", " "))
    if flags & _F4_KNOWN_MODEL:
        known, model_version = take(1, "model number")[0], number("model version")
    else:
        model = take(take(1, "model id length")[0], "model id")
    if flags & _F4_HASH16:
        digits = take(8, "weights hash").hex()
    else:
        hash_raw, digits = _read_hash(f, "weights hash")
        parts.append(hash_raw)
        digits = _check_hash(digits, hash_raw[0], "weights hash")
    coding = flags & _F4_CODING
    tail = _read_context_tail(f, bool(flags & _F4_KNOWN_CTX)) if coding == PAYLOAD_ENTROPY else None
    raw = b"".join(parts) + (tail[0] if tail else b"")
    _check_crc(f, raw)
    if flags & _F4_RESERVED:
        raise FormatError(f"unsupported .rcq format-4 flags {flags:#04x}; upgrade rotcodec to read it")
    _check_coding(coding)
    if tail and tail[1] is None:
        raise FormatError(f"invalid .rcq header: context model number {tail[0][0]} is not one this rotcodec "
                          f"knows (1 to {len(KNOWN_CONTEXT_MODELS)}); upgrade rotcodec to read it")
    if flags & _F4_KNOWN_MODEL:
        if not 1 <= known <= len(KNOWN_MODELS):
            raise FormatError(f"invalid .rcq header: model number {known} is not one this rotcodec knows "
                              f"(1 to {len(KNOWN_MODELS)}); upgrade rotcodec to read it")
        fields["model"] = f"{KNOWN_MODELS[known - 1]}@{model_version}"
    else:
        if not model:
            raise FormatError("invalid .rcq header: empty model id")
        fields["model"] = _text(model, "model id")
    if hop == 0:
        raise FormatError("invalid .rcq header: field 'hop' must be at least 1")
    fields.update(model_hash=digits, frame_rate=frame_rate if hop is None else fields["sample_rate"] / hop)
    header, size = _with_payload(fields, coding, tail)
    try:  # the one encoding, or the long form of a known context model (format 4 before KNOWN_CTX)
        canonical = _encode_header(header, 4, size)[:-_CRC.size]
        if canonical != raw and _known_context(header):
            canonical = _encode_header(header, 4, size, known_ctx=False)[:-_CRC.size]
    except ValueError:
        canonical = b""
    if canonical != raw:
        raise FormatError("invalid .rcq header: a format-4 value not in its one encoding "
                          "(a longer varint or flag form than needed)")
    return header, size


def read_header(f: IO[bytes]) -> Header:
    """Read and validate the start of a ``.rcq`` file (magic .. header_crc) from ``f``.

    Leaves ``f`` positioned at the gains (or, without gains, the payload). Cheap: reads at most
    ``MAX_HEADER_BYTES + 13`` bytes (format 2; 632 in format 3, 675 in format 4), so it suits ``info``-style commands.

    Raises:
        FormatError: wrong magic, unsupported version or payload coding, truncation, bad CRC or
            bad header.
    """
    return _read_header_sized(f)[0]


def _read_header_sized(f: IO[bytes]) -> tuple[Header, int]:
    """:func:`read_header` and the size of the payload that follows the gains."""
    version = _read_version(f)
    if version >= 3:
        header, size = (_read_header_v3 if version == 3 else _read_header_v4)(f)
        return header, packed_size(header.num_codes, header.bits) if size is None else size
    (header_len,) = _JSON_LEN.unpack(_read_exact(f, _JSON_LEN.size, "header length"))
    if header_len > MAX_HEADER_BYTES:
        raise FormatError(f"invalid .rcq file: header of {header_len} bytes exceeds {MAX_HEADER_BYTES}")
    raw = _read_exact(f, header_len, "header")
    (crc,) = _CRC.unpack(_read_exact(f, _CRC.size, "header CRC"))
    if crc != zlib.crc32(raw):
        raise FormatError("corrupt .rcq file: header CRC mismatch")
    header = _decode_header(raw, version)
    return header, packed_size(header.num_codes, header.bits)


def read_rcq_gains(f: IO[bytes], context_model=None) -> tuple[Header, np.ndarray, np.ndarray]:
    """Read one whole ``.rcq`` file from ``f`` (which must end right after it), gains included.

    An entropy-coded payload is decoded with ``context_model`` (an
    :class:`~rotcodec.entropy.model.IntContextModel`), or without it with the bundled context
    model the header names (FormatError naming it when this rotcodec has no such model).

    Returns:
        ``(header, codes, gains)``: ``codes`` an ``int64`` array ``[C, n_q, F]``, ``gains`` an
        ``int8`` array ``[C, B]`` with ``B = header.gain_blocks`` (``[C, 0]`` for a file without
        gains, as every format-1 file).

    Raises:
        FormatError: any malformed, truncated, corrupt or unsupported input. The gains and
            payload sizes the header implies (``channels * ceil(frames / gain_frames)`` gain
            bytes, the packed codes) are checked against the stream's real size (seekable
            streams) or read in 1 MiB pieces (others) before they are allocated; the payload
            CRC covers the gains, so a damaged gain is a CRC mismatch.
    """
    header, payload_size = _read_header_sized(f)
    count = header.num_codes
    size = header.num_gains + payload_size
    left = _remaining(f)
    if left is not None and left < size + _CRC.size:
        raise FormatError(
            f"truncated .rcq file: header promises {size + _CRC.size} more bytes, only {left} left"
        )
    gain_bytes = _read_exact(f, header.num_gains, "gains") if header.num_gains else b""
    payload = _read_exact(f, size - header.num_gains, "payload")
    (crc,) = _CRC.unpack(_read_exact(f, _CRC.size, "payload CRC"))
    if crc != zlib.crc32(payload, zlib.crc32(gain_bytes)):
        raise FormatError("corrupt .rcq file: payload CRC mismatch (gains or codes damaged)")
    if f.read(1):
        raise FormatError("invalid .rcq file: unexpected bytes after the payload")
    if header.coding == PAYLOAD_ENTROPY:
        from rotcodec.entropy.payload import decode_codes

        model = _context_model(header, context_model)
        if model.codebook_size > 2**header.bits or header.n_q > model.max_stages:
            raise FormatError(f"the .rcq header contradicts its context model {header.context_model!r}: "
                              f"{header.n_q} stages of {header.bits}-bit codes")
        codes = decode_codes(model, payload, header.channels, header.n_q, header.frames)
    else:
        flat = unpack_codes(payload, header.bits, count)
        codes = flat.reshape(header.frames, header.channels, header.n_q).transpose(1, 2, 0)
    gains = np.frombuffer(gain_bytes, dtype=np.int8).reshape(header.gain_blocks, header.channels).T.copy()
    return header, np.ascontiguousarray(codes), gains


def read_rcq(f: IO[bytes], context_model=None) -> tuple[Header, np.ndarray]:
    """Read one whole ``.rcq`` file from ``f``: ``(header, codes [C, n_q, F] int64)``, the gains
    checked but left out (see :func:`read_rcq_gains`, which raises the same errors)."""
    header, codes, _ = read_rcq_gains(f, context_model)
    return header, codes


def dumps(header: Header, codes, gains=None, version: int = FORMAT_VERSION, context_model=None) -> bytes:
    """Serialise ``header``, ``codes [C, n_q, F]`` and ``gains [C, B]`` to format-``version`` ``.rcq``
    bytes (see :func:`write_rcq`)."""
    buf = io.BytesIO()
    write_rcq(buf, header, codes, gains, version, context_model)
    return buf.getvalue()


def loads_gains(data: bytes, context_model=None) -> tuple[Header, np.ndarray, np.ndarray]:
    """Parse ``.rcq`` bytes into ``(header, codes [C, n_q, F] int64, gains [C, B] int8)`` (see
    :func:`read_rcq_gains`).

    Raises:
        TypeError: ``data`` is not bytes-like.
        FormatError: malformed input.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"loads() needs bytes, got {type(data).__name__}")
    return read_rcq_gains(io.BytesIO(bytes(data)), context_model)


def loads(data: bytes, context_model=None) -> tuple[Header, np.ndarray]:
    """Parse ``.rcq`` bytes into ``(header, codes [C, n_q, F] int64)`` (see :func:`read_rcq`).

    Raises:
        TypeError: ``data`` is not bytes-like.
        FormatError: malformed input.
    """
    header, codes, _ = loads_gains(data, context_model)
    return header, codes
