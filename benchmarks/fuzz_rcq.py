"""Bounded fuzzing of the ``.rcq`` reader: only FormatError may escape, nothing hangs or balloons.

    python benchmarks/fuzz_rcq.py --cases 12000 [--seed 0] [--json fuzz.json] [--csv docs/fuzz.csv]

Each case is a byte string handed to ``rotcodec.decompress(data, model)`` (header, payload, CRCs,
the header-vs-model checks, then the decoder) with a tiny random model. The valid files are
written in format 4 (compact varint header, the default, as ``compress`` writes it), again in
format 3 (fixed binary header, ``dumps(..., version=3)``) and in format 2 (JSON header), and
entropy-coded in formats 4 and 3. A few more are entropy-coded format-4 files of a bundled
context model (``KNOWN_CONTEXT_MODELS[0]``, ``stft16k-cpu.entropy``), which format 4 names by a
number (flag KNOWN_CTX, the short form), each with its long-form twin (the context model's id and
hash, as format 4 was written before KNOWN_CTX; still read): headers like the bundled model's
(``dumps(Header(...), codes)``, random codes, mono and stereo, 1 to 12 stages, 1 to 100 frames),
decoded by the bundled ``stft16k-cpu`` model, whose weights hash they carry (each case is decoded
by the model whose hash its header names, else the tiny one). ``field``, ``json``, ``sizes`` and
``payload`` attack format 2, the ``*3`` categories format 3, the ``*4`` categories format 4, the
others all of them. Categories, drawn in turn:

  random      random bytes (0..4 KiB), half of them starting with the real magic and version 2, 3 or 4
  truncate    a valid file cut at a random length
  bitflip     a valid file with 1..8 random bits flipped
  field       one JSON header field set to a hostile value (negative, 0, huge, 2**63, float, string,
              bool, null, list, object, missing, duplicated, unknown key, another model's name or
              hash), with both CRCs recomputed, so the value reaches the field checks
  json        the header replaced by malformed or adversarial JSON (deep nesting, 1e999, NaN, huge
              ints, invalid UTF-8, wrong top-level type), CRC recomputed
  sizes       header_len / frames / payload disagreeing (CRCs recomputed where the case needs it)
  append      a valid file with 1..4096 random bytes appended
  payload     payload bytes randomised with the payload CRC recomputed (codes stay in range or
              decode to noise: a valid file)
  field3      one fixed format-3 field set to a hostile raw value (0, 1, 2**k - 1, 2**k, all ones,
              NaN, inf, -0.0, tiny, huge for the frame rate), or the model id / hash replaced by
              random bytes with random length bytes, header and payload CRCs recomputed
  sizes3      format-3 frames / length / gain_frames / payload disagreeing, CRCs recomputed
  coding3     an unknown payload coding (2..255), or 1..8 random header bytes replaced, CRC recomputed
  entropy3    an entropy-coded format-3 file (coding 1, a tiny context model registered for the
              tiny model) with its payload randomised, bit-flipped, cut, padded or replaced, its
              payload size field wrong, or its context model id / hash replaced, CRCs recomputed:
              the range decoder must end in FormatError or codes, never hang
  field4      one part of a format-4 header (``split4``) changed, both CRCs recomputed: the flags
              (1..3 bits flipped, or a random byte), the shape, any varint set to a hostile value,
              written longer than needed (an extra 0x80 continuation, then 0x00) or as 11 bytes of
              0xff, the frame rate as a float64 (NaN, inf, 0, -0, tiny, huge, or one a hop holds),
              a model number (0, 1..len(KNOWN_MODELS) + 2, 255) with a hostile version, the model
              id as random text, or the weights hash replaced (8 raw bytes or length + digits)
  sizes4      format-4 frames / length / gain_frames / payload disagreeing, CRCs recomputed
  entropy4    entropy3's mutations on an entropy-coded format-4 file (the short form of a known
              context model too; its id and hash are replaced on long-form files only)
  knownctx4   the short form (KNOWN_CTX, flag 0x40) of a known context model: its number hostile (0,
              len(KNOWN_CONTEXT_MODELS) + 1, 255, random, or another known one), the flag toggled
              with the tail unchanged or converted (the other form, which decodes), the short and
              long tails swapped, the flag set on bit-packed files (with or without a number after
              the hash, the coding set to 1 too), the coding or a reserved bit changed beside it,
              the payload size after the number hostile, both tails at once, the model's own
              context model named in full, or the tail cut, CRCs recomputed (half the cases with
              the header CRC where a reader of the changed bytes ends the header, so its values
              are read past the CRC check)

Outcomes: ``decoded`` (a valid file), ``FormatError``, or ``BUG`` (any other exception, a case
over ``--max-seconds``, or a format-4 header that decodes but that the writer would encode in other
bytes, except the long form of a known context model, which must re-encode to the short form).
Peak RSS growth is reported; the exit code is 1 if any case is a BUG.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import random
import re
import resource
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rotcodec  # noqa: E402
from rotcodec.coding.resampling import resampled_length  # noqa: E402
from rotcodec.errors import FormatError  # noqa: E402
from rotcodec.entropy import bundled  # noqa: E402
from rotcodec.entropy.fit import ContextNet, FitConfig, calibration, quantise  # noqa: E402
from rotcodec.io.container import (  # noqa: E402
    FORMAT_VERSION, KNOWN_CONTEXT_MODELS, KNOWN_MODELS, MAGIC, Header, dumps, loads_gains, read_header,
)
from rotcodec.io.container import _encode_header as encode_header  # noqa: E402  (known_ctx=False: the long form)
from rotcodec.io.container import _varint as varint  # noqa: E402  (the writer's own LEB128)
from rotcodec.model.loading import weights_hash  # noqa: E402

PREFIX = struct.Struct("<4sBI")
CRC = struct.Struct("<I")
FIXED3 = struct.Struct("<BBBBIIdIQIHH")  # format 3's fixed fields (rotcodec/io/container.py)
F64 = struct.Struct("<d")
SHAPE4 = struct.Struct("<H")  # format 4: channels - 1 | (n_q - 1) << 6 | (bits - 1) << 12
KNOWN_MODEL, SAME_RATE, FLOAT_FPS, HASH16, KNOWN_CTX = 0x04, 0x08, 0x10, 0x20, 0x40  # format-4 flag bits
BUNDLED = "stft16k-cpu"  # the bundled model whose context model is KNOWN_CONTEXT_MODELS[0]


def make_model() -> rotcodec.Codec:
    torch.manual_seed(0)
    model = rotcodec.Codec(rotcodec.CodecConfig.preset("tiny"))
    model.train()
    model(torch.randn(2, 1, 8000) * 0.1)  # initialise the codebooks
    return model.eval()


def register_context_model(model) -> None:
    """A tiny untrained context model for ``model``'s codes, findable as ``tiny.entropy``."""
    q = model.config.quantizer
    cfg = FitConfig(codebook_size=q.codebook_size, stages=model.n_q, prev_frames=2, width=8)
    torch.manual_seed(0)
    codes = [np.random.default_rng(i).integers(0, q.codebook_size, (30, model.n_q)).astype(np.int16) for i in range(4)]
    ctx, n_q = calibration(codes, cfg, n=256)
    net = ContextNet(cfg).eval()
    bundled.register(f"{model.config.name}{bundled.SUFFIX}",
                     quantise(net, ctx, n_q, codec="tiny@1", codec_hash=weights_hash(model)))


def valid_files(model, bundled_model) -> list[bytes]:
    """A few real files: mono/stereo, 1 or all stages, model rate and resampled rates, 1 sample;
    then :func:`known_ctx_files` (``bundled_model``: the bundled model that decodes those)."""
    rng = np.random.default_rng(0)
    out = []
    # kbps is the file's total across its channels: 0.8 over 2 channels is one 0.4 kbps stage each.
    for channels, sr, seconds, kbps in [(1, 16000, 0.5, None), (2, 16000, 0.3, 0.8), (1, 8000, 0.4, None),
                                        (1, 44100, 0.2, 0.8), (1, 16000, 1 / 16000, None)]:
        wav = (0.1 * rng.standard_normal((channels, max(1, int(sr * seconds))))).astype(np.float32)
        data = rotcodec.compress(wav, sr, model, kbps=kbps)
        assert data[4] == FORMAT_VERSION == 4
        decoded = loads_gains(data)
        out += [data, dumps(*decoded, version=3), dumps(*decoded, version=2)]  # the same file in formats 4, 3, 2
        data4e = rotcodec.compress(wav, sr, model, kbps=kbps, entropy=True)
        assert data4e[4] == 4 and coding(data4e) == 1
        out += [data4e, dumps(*loads_gains(data4e), version=3)]  # entropy-coded, formats 4 and 3
    out += known_ctx_files(bundled_model)
    for data in out:  # the surgery below must take every valid file apart and put it back as it was
        if data[4] == 4:
            assert build4(*split4(data)) == data
        if data[4] >= 3 and coding(data) == 1:
            assert build_entropy(*split_entropy(data)) == data
        elif data[4] == 3:
            assert build3(*split3(data)) == data
    return out


def bundled_model() -> rotcodec.Codec:
    return rotcodec.load_model(BUNDLED)


def known_ctx_files(model) -> list[bytes]:
    """Entropy-coded format-4 files of the bundled context model ``KNOWN_CONTEXT_MODELS[0]``, each
    in the short form (flag KNOWN_CTX and its number, as ``dumps`` writes it) then in the long form
    (``_encode_header(..., known_ctx=False)``: its id and hash, as format 4 was written before
    KNOWN_CTX), both decoding to the same header, codes and gains. Headers like the bundled model's
    (``model``, whose weights hash they carry, so that it decodes them): 16 kHz, 50 frames/s,
    10-bit codes, a few stages, 1 to 100 frames, random codes and gains; the model id the model's
    own (its context model is then its own: ctx_len 0 in the long form) or another one."""
    rng = np.random.default_rng(1)
    ctx_model, ctx_hash = KNOWN_CONTEXT_MODELS[0]
    digest = weights_hash(model)
    assert len(digest) == 16 and model.sample_rate == 16000 and model.frame_rate == 50.0
    out = []
    # model id, channels, stages, input rate, samples (at the input rate), frames per gain block
    for model_id, channels, n_q, orig_sr, length, gain_frames in [
            (f"{BUNDLED}@1", 1, 3, 16000, 32000, 50), (f"{BUNDLED}@1", 1, 1, 16000, 1, 50),
            (f"{BUNDLED}@1", 2, 6, 44100, 22050, 0), (f"{BUNDLED}@1", 1, 12, 8000, 3000, 7),
            ("lab-copy@3", 1, 4, 16000, 6400, 50)]:
        frames = -(-resampled_length(length, orig_sr, 16000) // 320)
        header = Header(model=model_id, model_hash=digest, sample_rate=16000, original_sample_rate=orig_sr,
                        channels=channels, n_q=n_q, bits=10, frame_rate=50.0, frames=frames, length=length,
                        chunk_frames=250, chunk_overlap=20, gain_frames=gain_frames, coding=1,
                        context_model=ctx_model, context_hash=ctx_hash)
        codes = rng.integers(0, 1024, (channels, n_q, frames))
        gains = rng.integers(-80, 61, (channels, header.gain_blocks)) if gain_frames else None
        short = dumps(header, codes, gains)
        parts, body = split4(short)
        size = read_varint(dict(parts)["payload_size"])
        long = encode_header(header, 4, size, known_ctx=False) + body + CRC.pack(zlib.crc32(body))
        own = model_id.split("@")[0] + ".entropy" == ctx_model  # the long form's id: ctx_len 0
        assert short[5] & KNOWN_CTX and dict(parts)["ctx_number"] == b"\x01" and long[5] == short[5] & ~KNOWN_CTX
        assert len(long) == len(short) + 5 + (0 if own else len(ctx_model))
        expected_gains = np.zeros((channels, 0), np.int8) if gains is None else gains
        for data in (short, long):
            h, c, g = loads_gains(data)
            assert h == header and (c == codes).all()
            assert g.shape == expected_gains.shape and (g == expected_gains).all()
        out += [short, long]
    return out


def coding(data: bytes) -> int:
    """The payload coding of a valid format-3 or format-4 file (0 bit-packed, 1 entropy-coded)."""
    return data[5] if data[4] == 3 else data[5] & 0x03


def entropy_files(files: list[bytes], version: int = 3) -> list[bytes]:
    return [f for f in files if f[4] == version and coding(f) == 1]


def of_version(files: list[bytes], version: int) -> list[bytes]:
    return [f for f in files if f[4] == version and (version < 3 or coding(f) == 0)]  # formats 3, 4: bit-packed


def split(data: bytes) -> tuple[int, dict, bytes]:
    """``(version, header dict, payload)`` of a valid format-2 file."""
    _, version, n = PREFIX.unpack_from(data)
    header = json.loads(data[PREFIX.size: PREFIX.size + n])
    payload = data[PREFIX.size + n + CRC.size: -CRC.size]
    return version, header, payload


def build(header_raw: bytes, payload: bytes, version: int = 2, header_len: int | None = None,
          header_crc: int | None = None, payload_crc: int | None = None) -> bytes:
    """Assemble a file from parts, with correct lengths and CRCs unless told otherwise."""
    n = len(header_raw) if header_len is None else header_len
    hcrc = zlib.crc32(header_raw) if header_crc is None else header_crc
    pcrc = zlib.crc32(payload) if payload_crc is None else payload_crc
    return PREFIX.pack(MAGIC, version, n) + header_raw + CRC.pack(hcrc) + payload + CRC.pack(pcrc)


def dump(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


HOSTILE = [-1, 0, 1, 2, 3, 7, 255, 1023, 1024, 2**16, 2**31 - 1, 2**31, 2**32, 2**34 + 1, 2**50, 2**63, 2**64,
           10**30, -(2**63), 0.0, 0.5, -0.5, 1.0, 16000.0, 1e308, -1e308, 1e-320, "", "x", "16000", "tiny@1",
           "A" * 65, "\u0000", "\u202e", "é" * 40, True, False, None, [], [1], {}, {"a": 1}]


def gen_random(rng: random.Random, files: list[bytes]) -> bytes:
    body = rng.randbytes(rng.randrange(0, 4097))
    if rng.random() < 0.25:
        return PREFIX.pack(MAGIC, 2, rng.randrange(0, 20000)) + body
    if rng.random() < 1 / 3:
        return MAGIC + bytes([rng.choice([3, 4])]) + body
    return body


def gen_truncate(rng: random.Random, files: list[bytes]) -> bytes:
    data = rng.choice(files)
    return data[: rng.randrange(0, len(data))]


def gen_bitflip(rng: random.Random, files: list[bytes]) -> bytes:
    data = bytearray(rng.choice(files))
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(data) * 8)
        data[i // 8] ^= 1 << (i % 8)
    return bytes(data)


def gen_field(rng: random.Random, files: list[bytes]) -> bytes:
    version, header, payload = split(rng.choice(of_version(files, 2)))
    key = rng.choice(list(header))
    action = rng.random()
    if action < 0.75:
        header[key] = rng.choice(HOSTILE)
    elif action < 0.85:
        del header[key]
    elif action < 0.95:
        header[rng.choice(["extra", "Sr", "n_q ", "__proto__", ""])] = rng.choice(HOSTILE)
    else:  # duplicated key: JSON text with the key twice
        raw = dump(header)[:-1] + b',"' + key.encode() + b'":' + dump(rng.choice(HOSTILE)) + b"}"
        return build(raw, payload, version)
    return build(dump(header), payload, version)


BAD_JSON = [b"", b"{", b"}", b"[]", b"null", b"1", b'"x"', b"{}", b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000,
            b'{"sr":1e999}', b'{"sr":NaN}', b'{"sr":Infinity}', b'{"sr":-Infinity}', b'{"sr":' + b"9" * 5000 + b"}",
            b"\xff\xfe{}", b'{"model":"\xc3\x28"}', b'{"a":1,"a":2}', b"{\"model\":\"t\"}\x00", b" " * 16384]


def gen_json(rng: random.Random, files: list[bytes]) -> bytes:
    _, header, payload = split(rng.choice(of_version(files, 2)))
    raw = rng.choice(BAD_JSON)
    if rng.random() < 0.3:  # a valid header with a splice of junk inside
        text = bytearray(dump(header))
        i = rng.randrange(len(text))
        text[i:i] = rng.randbytes(rng.randint(1, 16))
        raw = bytes(text)
    return build(raw, payload)


def gen_sizes(rng: random.Random, files: list[bytes]) -> bytes:
    version, header, payload = split(rng.choice(of_version(files, 2)))
    raw = dump(header)
    kind = rng.randrange(6)
    if kind == 0:  # header_len pointing past the header (or huge)
        return build(raw, payload, version, header_len=rng.choice([len(raw) + 1, len(raw) - 1, 0, 2**31, 2**32 - 1]))
    if kind == 1:  # more frames than the payload holds
        header["frames"] = header["frames"] + rng.choice([1, 2, 1000, 10**9])
    elif kind == 2:  # fewer frames than the payload holds
        header["frames"] = max(0, header["frames"] - rng.choice([1, 2, 1000]))
    elif kind == 3:  # a length that the frames cannot cover, or that they over-cover
        header["len"] = max(0, header["len"] + rng.choice([-10**6, -1000, -1, 1, 1000, 10**6, 2**40]))
    elif kind == 4:  # payload cut or padded, CRC recomputed
        payload = payload[: rng.randrange(len(payload) + 1)] if rng.random() < 0.5 else payload + rng.randbytes(rng.randint(1, 64))
    else:  # frames, length and payload scaled together by a huge factor (a cheap file claiming hours)
        header["frames"] = header["frames"] * 10**6
        header["len"] = header["len"] * 10**6
    return build(dump(header), payload, version)


def gen_append(rng: random.Random, files: list[bytes]) -> bytes:
    return rng.choice(files) + rng.randbytes(rng.randint(1, 4096))


def gen_payload(rng: random.Random, files: list[bytes]) -> bytes:
    version, header, payload = split(rng.choice(of_version(files, 2)))
    return build(dump(header), rng.randbytes(len(payload)), version)


def split3(data: bytes) -> tuple[list, bytes, bytes]:
    """``(fixed field values, model id + hash with their length bytes, gains + payload)`` of a valid
    format-3 file."""
    fixed = list(FIXED3.unpack_from(data, 5))
    start = 5 + FIXED3.size
    end = start + 1 + data[start]
    end += 1 + (data[end] + 1) // 2
    return fixed, data[start:end], data[end + CRC.size: -CRC.size]


def build3(fixed: list | bytes, strings: bytes, payload: bytes) -> bytes:
    """A format-3 file from its parts, both CRCs correct."""
    head = MAGIC + bytes([3]) + (fixed if isinstance(fixed, bytes) else FIXED3.pack(*fixed)) + strings
    return head + CRC.pack(zlib.crc32(head)) + payload + CRC.pack(zlib.crc32(payload))


WIDTHS3 = [struct.calcsize("<" + code) for code in FIXED3.format[1:]]
FLOATS3 = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 5e-324, 1e308, -50.0, 49.99999999, 50.00000001,
           1e6, 1e6 + 1]


def gen_field3(rng: random.Random, files: list[bytes]) -> bytes:
    fixed, strings, payload = split3(rng.choice(of_version(files, 3)))
    if rng.random() < 0.75:
        i = rng.randrange(len(fixed))
        if FIXED3.format[1 + i] == "d":
            fixed[i] = rng.choice(FLOATS3)
        else:
            bits = 8 * WIDTHS3[i]
            k = rng.randrange(1, bits + 1)
            fixed[i] = rng.choice([0, 1, 2, (1 << k) - 1, (1 << k) % (1 << bits), (1 << bits) - 1,
                                   rng.randrange(1 << bits)])
        return build3(fixed, strings, payload)
    model_id = rng.choice([b"", b"tiny@1", b"\xff\xfe", b"a\nb", b"x" * 65, rng.randbytes(rng.randrange(256))])
    digits = rng.choice([0, 1, 15, 16, 17, 64, 65, 255])
    hash_bytes = rng.randbytes(rng.choice([(digits + 1) // 2, (digits + 1) // 2 + 1, max(0, (digits - 1) // 2)]))
    return build3(fixed, bytes([len(model_id) % 256]) + model_id + bytes([digits]) + hash_bytes, payload)


def gen_sizes3(rng: random.Random, files: list[bytes]) -> bytes:
    fixed, strings, payload = split3(rng.choice(of_version(files, 3)))
    kind = rng.randrange(5)
    if kind == 0:  # frames off by a little or a lot, within the field's width
        fixed[7] = (fixed[7] + rng.choice([-2, -1, 1, 2, 1000, 10**9])) % 2**32
    elif kind == 1:  # a length the frames cannot cover, or over-cover
        fixed[8] = max(0, fixed[8] + rng.choice([-10**6, -1000, -1, 1, 1000, 10**6, 2**40]))
    elif kind == 2:  # another gain block size
        fixed[11] = rng.choice([0, 1, 7, 49, 51, 2**16 - 1])
    elif kind == 3:  # payload cut or padded, CRC recomputed
        payload = payload[: rng.randrange(len(payload) + 1)] if rng.random() < 0.5 else payload + rng.randbytes(rng.randint(1, 64))
    else:  # frames and length scaled together (a cheap file claiming hours)
        fixed[7] = min(2**32 - 1, fixed[7] * 10**6)
        fixed[8] = fixed[8] * 10**6
    return build3(fixed, strings, payload)


def gen_coding3(rng: random.Random, files: list[bytes]) -> bytes:
    fixed, strings, payload = split3(rng.choice(of_version(files, 3)))
    if rng.random() < 0.5:
        fixed[0] = rng.randrange(2, 256)
        return build3(fixed, strings, payload)
    raw = bytearray(FIXED3.pack(*fixed) + strings)
    for _ in range(rng.randint(1, 8)):
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    return build3(bytes(raw[: FIXED3.size]), bytes(raw[FIXED3.size:]), payload)


def split_entropy(data: bytes) -> tuple[bytes, bytes, bytes, int, bytes]:
    """``(version byte + header up to the context model fields, context id with its length byte,
    context hash with its length byte, payload size, gains + payload)`` of a valid entropy-coded
    format-3 or format-4 file (format 4's short form, flag KNOWN_CTX: the context model's number
    in place of the id, and no hash: ``b""``)."""
    if data[4] == 4:
        parts, body = split4(data)
        named = dict(parts)
        head = data[4: 5 + sum(len(raw) for name, raw in parts if name not in TAIL4)]
        if "ctx_number" in named:
            return head, named["ctx_number"], b"", read_varint(named["payload_size"]), body
        return head, named["ctx_model"], named["ctx_hash"], read_varint(named["payload_size"]), body
    pos = 5 + FIXED3.size
    pos += 1 + data[pos]
    pos += 1 + (data[pos] + 1) // 2
    ctx_end = pos + 1 + data[pos]
    hash_end = ctx_end + 1 + (data[ctx_end] + 1) // 2
    end = hash_end + len(varint_at(data, hash_end))
    return data[4:pos], data[pos:ctx_end], data[ctx_end:hash_end], read_varint(data[hash_end:end]), \
        data[end + CRC.size: -CRC.size]


def build_entropy(head: bytes, ctx_id: bytes, ctx_hash: bytes, size: int | bytes, body: bytes) -> bytes:
    """An entropy-coded file from the parts :func:`split_entropy` gives (``head`` starts with the
    version byte; ``size`` an int, or raw varint bytes), both CRCs correct."""
    raw = MAGIC + head + ctx_id + ctx_hash + (size if isinstance(size, bytes) else varint(size))
    return raw + CRC.pack(zlib.crc32(raw)) + body + CRC.pack(zlib.crc32(body))


def gen_entropy(rng: random.Random, files: list[bytes], version: int = 3) -> bytes:
    kind = rng.randrange(7)
    pool = entropy_files(files, version)
    if kind >= 5:  # an id or hash to replace: a long-form file (format 4's short form has neither)
        pool = [f for f in pool if f[4] == 3 or not f[5] & KNOWN_CTX]
    head, ctx_id, ctx_hash, size, body = split_entropy(rng.choice(pool))
    gains, payload = body[: len(body) - size], body[len(body) - size:]
    if kind == 0:  # the payload randomised, same size
        payload = rng.randbytes(len(payload))
    elif kind == 1:  # 1..8 bits flipped
        raw = bytearray(payload)
        for _ in range(rng.randint(1, 8)):
            if raw:
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        payload = bytes(raw)
    elif kind == 2:  # cut or padded, the size field following it
        cut = rng.random() < 0.5
        payload = payload[: rng.randrange(len(payload) + 1)] if cut else payload + rng.randbytes(rng.randint(1, 64))
    elif kind == 3:  # another payload of any length (all zeros, all ones, random)
        n = rng.choice([0, 1, 8, 9, 64, 4096])
        payload = rng.choice([bytes(n), b"\xff" * n, rng.randbytes(n)])
    elif kind == 4:  # the size field wrong (or not in its shortest form, or endless), the bytes as they were
        return build_entropy(head, ctx_id, ctx_hash, rng.choice([0, 1, max(0, size - 1), size + 1, 2**31, 2**35,
                                                                 b"\x80\x00", b"\xff" * 6, rng.randbytes(3)]), body)
    elif kind == 5:  # another context model id
        new = rng.choice([b"", b"x", b"tiny.entropy2", b"../tiny", b"\xff\xfe", rng.randbytes(rng.randrange(256))])
        ctx_id = bytes([len(new) % 256]) + new
    else:  # another hash
        digits = rng.choice([0, 1, 15, 16, 17, 64, 65, 255])
        ctx_hash = bytes([digits]) + rng.randbytes(rng.choice([(digits + 1) // 2, max(0, (digits - 1) // 2)]))
    return build_entropy(head, ctx_id, ctx_hash, len(payload), gains + payload)


def gen_entropy3(rng: random.Random, files: list[bytes]) -> bytes:
    return gen_entropy(rng, files, 3)


def gen_entropy4(rng: random.Random, files: list[bytes]) -> bytes:
    return gen_entropy(rng, files, 4)


VARINTS4 = ("sample_rate", "orig_sr", "hop", "frames", "length", "chunk_frames", "chunk_overlap", "gain_frames",
            "model_version", "payload_size")
TAIL4 = ("ctx_number", "ctx_model", "ctx_hash", "payload_size")  # entropy-coded files only (coding 1)
CTX4 = TAIL4[:3]  # the context model: its number (KNOWN_CTX), or its id and hash


def varint_at(data: bytes, pos: int) -> bytes:
    """The raw bytes of the LEB128 varint at ``data[pos]`` (to its first byte below 0x80)."""
    end = pos
    while data[end] >= 0x80:
        end += 1
    return data[pos: end + 1]


def read_varint(raw: bytes) -> int:
    return sum((b & 0x7F) << (7 * i) for i, b in enumerate(raw))


def split4(data: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """``([(name, raw bytes) for each header part after the version byte, in file order], gains +
    payload)`` of a valid format-4 file. The names: flags, shape, sample_rate, orig_sr (unless
    SAME_RATE), hop or frame_rate (FLOAT_FPS), frames, length, chunk_frames, chunk_overlap,
    gain_frames, model_number and model_version (KNOWN_MODEL) or model (length byte + text), hash
    (HASH16: 8 bytes, else length byte + digits), and for coding 1 ctx_number (KNOWN_CTX: one byte)
    or ctx_model and ctx_hash (length byte + id, length byte + digits), then payload_size. (A
    bit-packed file with KNOWN_CTX is never valid: its flag is ignored here.)"""
    parts: list[tuple[str, bytes]] = []
    pos = 5

    def take(name: str, n: int) -> None:
        nonlocal pos
        parts.append((name, data[pos: pos + n]))
        pos += n

    def number(name: str) -> None:
        take(name, len(varint_at(data, pos)))

    flags = data[5]
    take("flags", 1)
    take("shape", SHAPE4.size)
    number("sample_rate")
    if not flags & SAME_RATE:
        number("orig_sr")
    if flags & FLOAT_FPS:
        take("frame_rate", F64.size)
    else:
        number("hop")
    for name in ("frames", "length", "chunk_frames", "chunk_overlap", "gain_frames"):
        number(name)
    if flags & KNOWN_MODEL:
        take("model_number", 1)
        number("model_version")
    else:
        take("model", 1 + data[pos])
    take("hash", 8 if flags & HASH16 else 1 + (data[pos] + 1) // 2)
    if flags & 0x03 == 1:
        if flags & KNOWN_CTX:
            take("ctx_number", 1)
        else:
            take("ctx_model", 1 + data[pos])
            take("ctx_hash", 1 + (data[pos] + 1) // 2)
        number("payload_size")
    return parts, data[pos + CRC.size: -CRC.size]


def build4(parts: list[tuple[str, bytes]], body: bytes) -> bytes:
    """A format-4 file from :func:`split4`'s parts (any bytes in any part), both CRCs correct."""
    head = MAGIC + bytes([4]) + b"".join(raw for _, raw in parts)
    return head + CRC.pack(zlib.crc32(head)) + body + CRC.pack(zlib.crc32(body))


def build4_as_read(parts: list[tuple[str, bytes]], body: bytes) -> bytes:
    """:func:`build4`, but with the header CRC where a reader parsing these bytes ends the header
    (which a changed flag or tail moves: the reader takes its fields from the bytes that follow,
    the body's first bytes too), so that the values read, not only the CRC check, are tested."""
    stream = MAGIC + bytes([4]) + b"".join(raw for _, raw in parts) + body
    try:
        end = 5 + sum(len(raw) for _, raw in split4(stream + bytes(2 * CRC.size))[0])
    except IndexError:  # a varint running past the end: as build4
        return build4(parts, body)
    if end > len(stream):
        return build4(parts, body)
    head, rest = stream[:end], stream[end:]
    return head + CRC.pack(zlib.crc32(head)) + rest + CRC.pack(zlib.crc32(rest))


def set_part(parts: list[tuple[str, bytes]], name: str, raw: bytes | list[tuple[str, bytes]]) -> None:
    """Replace the part ``name`` by ``raw`` (bytes, or a list of parts)."""
    i = [n for n, _ in parts].index(name)
    parts[i: i + 1] = [(name, raw)] if isinstance(raw, bytes) else raw


def set_flags(parts: list[tuple[str, bytes]], on: int = 0, off: int = 0) -> None:
    parts[0] = ("flags", bytes([(parts[0][1][0] | on) & ~off & 0xFF]))


HOSTILE_INTS = sorted({abs(v) for v in HOSTILE if isinstance(v, int) and not isinstance(v, bool)})


def hostile_varint(rng: random.Random, raw: bytes) -> bytes:
    """A varint field's new bytes: a hostile value, the old value written longer than needed, or
    11 bytes of 0xff (longer than the reader takes)."""
    kind = rng.random()
    if kind < 0.6:
        return varint(rng.choice(HOSTILE_INTS + [rng.randrange(2**rng.randrange(1, 71))]))
    if kind < 0.9:
        return raw[:-1] + bytes([raw[-1] | 0x80]) + b"\x00" * rng.randint(1, 2)
    return b"\xff" * 11


def gen_field4(rng: random.Random, files: list[bytes]) -> bytes:
    parts, body = split4(rng.choice(of_version(files, 4)))
    names = [n for n, _ in parts]
    kind = rng.randrange(7)
    if kind == 0:  # the flags: 1..3 bits flipped, or any byte
        flags = parts[0][1][0]
        if rng.random() < 0.7:
            for _ in range(rng.randint(1, 3)):
                flags ^= 1 << rng.randrange(8)
        else:
            flags = rng.randrange(256)
        parts[0] = ("flags", bytes([flags]))
    elif kind == 1:  # the shape: channels, stages, bits at their limits, or any two bytes
        ch, n_q, bits = rng.choice([1, 2, 63, 64]), rng.choice([1, 2, 3, 64]), rng.choice([1, 7, 8, 9, 16])
        shape = rng.choice([SHAPE4.pack((ch - 1) | (n_q - 1) << 6 | (bits - 1) << 12), rng.randbytes(2),
                            b"\x00\x00", b"\xff\xff"])
        set_part(parts, "shape", shape)
    elif kind == 2:  # a varint field hostile, non-shortest or endless
        name = rng.choice([n for n in names if n in VARINTS4])
        set_part(parts, name, hostile_varint(rng, dict(parts)[name]))
    elif kind == 3:  # the frame rate as a float64 (NaN, inf, 0, -0, tiny, huge, or 50.0 that a hop holds)
        set_flags(parts, on=FLOAT_FPS)
        set_part(parts, "hop", [("frame_rate", F64.pack(rng.choice(FLOATS3 + [50.0, 16000.0, 1e-300])))])
    elif kind == 4:  # a model number, known or not, with any version
        set_flags(parts, on=KNOWN_MODEL)
        number = rng.choice([0, *range(1, len(KNOWN_MODELS) + 3), 255])
        version = rng.choice([0, 1, 2, 2**32 - 1, 2**32, 2**63, rng.randrange(2**40)])
        set_part(parts, "model", [("model_number", bytes([number])), ("model_version", varint(version))])
    elif kind == 5:  # the model id as other text (or a known model's id, which has a shorter form)
        model_id = rng.choice([b"", b"tiny@2", b"tiny", b"stft16k-cpu@1", b"\xff\xfe", b"a\nb", b"x" * 255,
                               rng.randbytes(rng.randrange(256))])
        set_part(parts, "model", bytes([len(model_id) % 256]) + model_id)
    else:  # the weights hash: 8 other raw bytes (HASH16) or a length byte and digits (the real ones too)
        if rng.random() < 0.5:
            set_flags(parts, on=HASH16)
            set_part(parts, "hash", rng.randbytes(8))
        else:
            set_flags(parts, off=HASH16)
            digits = rng.choice([0, 1, 15, 16, 17, 64, 65, 255])
            packed = dict(parts)["hash"] if digits == 16 and rng.random() < 0.5 else rng.randbytes((digits + 1) // 2)
            set_part(parts, "hash", bytes([digits]) + packed)
    return build4(parts, body)


def gen_sizes4(rng: random.Random, files: list[bytes]) -> bytes:
    parts, body = split4(rng.choice(of_version(files, 4)))
    value = {name: read_varint(raw) for name, raw in parts if name in VARINTS4}
    kind = rng.randrange(5)
    if kind == 0:  # frames off by a little or a lot
        set_part(parts, "frames", varint(max(0, value["frames"] + rng.choice([-2, -1, 1, 2, 1000, 10**9, 2**40]))))
    elif kind == 1:  # a length the frames cannot cover, or over-cover
        set_part(parts, "length", varint(max(0, value["length"] + rng.choice([-10**6, -1000, -1, 1, 1000, 10**6,
                                                                             2**40]))))
    elif kind == 2:  # another gain block size
        set_part(parts, "gain_frames", varint(rng.choice([0, 1, 7, 49, 51, 2**16 - 1, 2**16, 2**34])))
    elif kind == 3:  # payload cut or padded, CRC recomputed
        body = body[: rng.randrange(len(body) + 1)] if rng.random() < 0.5 else body + rng.randbytes(rng.randint(1, 64))
    else:  # frames and length scaled together (a cheap file claiming hours)
        set_part(parts, "frames", varint(value["frames"] * 10**6))
        set_part(parts, "length", varint(value["length"] * 10**6))
    return build4(parts, body)


KNOWN_HASHES = {bytes([len(digits)]) + bytes.fromhex(digits) for _, digits in KNOWN_CONTEXT_MODELS}


def of_known_ctx(files: list[bytes]) -> list[bytes]:
    """The entropy-coded format-4 files of a known context model: the short forms (KNOWN_CTX) and
    their long-form twins."""
    return [f for f in files if f[4] == 4 and coding(f) == 1
            and (f[5] & KNOWN_CTX or dict(split4(f)[0])["ctx_hash"] in KNOWN_HASHES)]


def ctx_tails(data: bytes) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """``(short, long)``: the context-model parts (:data:`CTX4`) of the valid format-4 file ``data``
    of a known context model in either form: ``[ctx_number]`` and ``[ctx_model, ctx_hash]``."""
    header = read_header(io.BytesIO(data))
    size = read_varint(dict(split4(data)[0])["payload_size"])

    def tail(known_ctx: bool) -> list[tuple[str, bytes]]:
        head = encode_header(header, 4, size, known_ctx=known_ctx)
        return [p for p in split4(head + CRC.pack(0))[0] if p[0] in CTX4]

    return tail(True), tail(False)


def set_ctx(parts: list[tuple[str, bytes]], tail: list[tuple[str, bytes]]) -> None:
    """Replace the context-model parts (whichever there are, or none) by ``tail``, before payload_size."""
    parts[:] = [p for p in parts if p[0] not in CTX4]
    names = [n for n, _ in parts]
    i = names.index("payload_size") if "payload_size" in names else len(parts)
    parts[i:i] = tail


def gen_knownctx4(rng: random.Random, files: list[bytes]) -> bytes:
    data = rng.choice(of_known_ctx(files))
    parts, body = split4(data)
    short, long = ctx_tails(data)
    is_short = bool(data[5] & KNOWN_CTX)
    toggle = dict(on=0, off=KNOWN_CTX) if is_short else dict(on=KNOWN_CTX, off=0)
    n = len(KNOWN_CONTEXT_MODELS)
    kind = rng.randrange(9)
    if kind == 0:  # a number hostile (0, one past the last, 255, any byte) or another known one, short form
        set_flags(parts, on=KNOWN_CTX)
        set_ctx(parts, [("ctx_number", bytes([rng.choice([0, n + 1, n + 2, 128, 255, rng.randrange(256),
                                                          *range(1, n + 1)])]))])
    elif kind == 1:  # the flag toggled, the tail as it was (a number read as an id length, or the reverse)
        set_flags(parts, **toggle)
    elif kind == 2:  # the flag toggled and the tail converted: the other form of the same header (it decodes)
        set_flags(parts, **toggle)
        set_ctx(parts, long if is_short else short)
    elif kind == 3:  # the short and long tails swapped, the flag as it was
        set_ctx(parts, long if is_short else short)
    elif kind == 4:  # KNOWN_CTX on a bit-packed file: alone, or a number (and a payload size) after the hash
        src = rng.choice(of_version(files, 4))
        parts, body = split4(src)
        set_flags(parts, on=KNOWN_CTX)
        if rng.random() < 2 / 3:
            parts.append(("ctx_number", bytes([rng.choice([1, 2, 0, 255])])))
            if rng.random() < 2 / 3:
                size = len(body) - read_header(io.BytesIO(src)).num_gains
                parts.append(("payload_size", varint(rng.choice([size, 0, size + 1, len(body)]))))
                if rng.random() < 0.5:  # coding 1 too: the bit-packed codes read as range-coded
                    set_flags(parts, on=1)
    elif kind == 5:  # the short form with the coding changed (0: bit-packed, 2, 3) or a reserved bit set
        set_flags(parts, on=KNOWN_CTX)
        set_ctx(parts, short)
        if rng.random() < 0.25:
            set_flags(parts, on=0x80)
        else:
            set_flags(parts, off=0x03)
            set_flags(parts, on=rng.choice([0, 2, 3]))
            if rng.random() < 0.5:  # the tail dropped too, as a bit-packed header has none
                parts = [p for p in parts if p[0] not in TAIL4]
    elif kind == 6:  # the short form with the payload size after the number hostile, wrong or longer than needed
        set_flags(parts, on=KNOWN_CTX)
        set_ctx(parts, short)
        size = dict(parts)["payload_size"]
        value = read_varint(size)
        set_part(parts, "payload_size", rng.choice([hostile_varint(rng, size), varint(max(0, value - 1)),
                                                    varint(value + 1), varint(0), b""]))
    elif kind == 7:  # both tails: the number then the id and hash (KNOWN_CTX), or the id and hash then the number
        if rng.random() < 0.5:
            set_flags(parts, on=KNOWN_CTX)
            set_ctx(parts, short + long)
        else:
            set_flags(parts, off=KNOWN_CTX)
            set_ctx(parts, long + short)
    else:  # the long form not in its one encoding (its own context model named in full, or another
        # model's as its own; the hash as 9 digits, the 9th a padding 0, or 7, 16 or none), or the tail cut short
        set_flags(parts, off=KNOWN_CTX)
        set_ctx(parts, long)
        named = dict(parts)
        sub = rng.randrange(3)
        if sub == 0:
            ctx_id = KNOWN_CONTEXT_MODELS[0][0].encode()
            set_part(parts, "ctx_model", bytes([len(ctx_id)]) + ctx_id if named["ctx_model"] == b"\x00" else b"\x00")
        elif sub == 1:
            digits = named["ctx_hash"][1:]
            set_part(parts, "ctx_hash", rng.choice([b"\x09" + digits + b"\x00", b"\x07" + digits[:4],
                                                    b"\x10" + digits + bytes(4), b"\x00"]))
        else:
            if rng.random() < 0.5:
                set_flags(parts, on=KNOWN_CTX)
                set_ctx(parts, short)
            parts = parts[: len(parts) - rng.randint(1, 2)]
    return (build4_as_read if rng.random() < 0.5 else build4)(parts, body)


GENERATORS = {"random": gen_random, "truncate": gen_truncate, "bitflip": gen_bitflip, "field": gen_field,
              "json": gen_json, "sizes": gen_sizes, "append": gen_append, "payload": gen_payload,
              "field3": gen_field3, "sizes3": gen_sizes3, "coding3": gen_coding3, "entropy3": gen_entropy3,
              "field4": gen_field4, "sizes4": gen_sizes4, "entropy4": gen_entropy4, "knownctx4": gen_knownctx4}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def message_kind(text: str) -> str:
    """An error message with its numbers and quoted values blanked, so like errors group together."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"(?<![A-Za-z])-?\d[\d.e+-]*", "N", text)
    return text.split(" (")[0].split(", got")[0][:90]


def header_round_trip(data: bytes) -> str:
    """For a format-4 file that decoded: "" when the header the writer makes of the values read is
    the header read (each value has one encoding), else what differs. The one exception: the long
    form of a known context model (format 4 before KNOWN_CTX) is read and re-encodes to the short form."""
    if data[4] != 4:
        return ""
    header, codes, gains = loads_gains(data)
    read = [p for p in split4(data)[0] if p[0] != "payload_size"]  # an entropy payload may re-encode shorter
    written = [p for p in split4(dumps(header, codes, gains))[0] if p[0] != "payload_size"]
    if read == written:
        return ""
    known = (header.context_model, header.context_hash) in KNOWN_CONTEXT_MODELS
    if known and not data[5] & KNOWN_CTX and written[0][1][0] & KNOWN_CTX:
        size = read_varint(dict(split4(data)[0])["payload_size"])
        long = [p for p in split4(encode_header(header, 4, size, known_ctx=False) + CRC.pack(0))[0]
                if p[0] != "payload_size"]
        if read == long:
            return ""
    return f"the header decodes but re-encodes differently: {read} -> {written}"


def pick_model(data: bytes, models: dict[str, rotcodec.Codec]) -> rotcodec.Codec:
    """The model of ``models`` (weights hash -> model, the tiny one first) whose hash the header of
    ``data`` names, else the first (then ``decompress`` says what is wrong)."""
    first = next(iter(models.values()))
    try:
        return models.get(read_header(io.BytesIO(data)).model_hash, first)
    except FormatError:
        return first


def run_case(data: bytes, models: dict[str, rotcodec.Codec]) -> tuple[str, str]:
    try:
        rotcodec.decompress(data, pick_model(data, models))
        detail = header_round_trip(data)
        return ("BUG", detail) if detail else ("decoded", "")
    except FormatError as err:
        return "FormatError", message_kind(str(err))
    except Exception as err:  # the point of the fuzzer: anything else is a bug
        return "BUG", f"{type(err).__name__}: {err}"[:300]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=2.0)
    ap.add_argument("--json", default=None, help="write counts and any bugs as JSON")
    ap.add_argument("--csv", default=None, help="write the counts by category as CSV (docs/fuzz.csv)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, bundled_codec = make_model(), bundled_model()
    models = {weights_hash(model): model, weights_hash(bundled_codec): bundled_codec}
    register_context_model(model)
    files = valid_files(model, bundled_codec)
    for data in files:  # the seeds themselves must decode, with no header the writer would write otherwise
        assert run_case(data, models) == ("decoded", ""), run_case(data, models)
    rng = random.Random(args.seed)
    names = list(GENERATORS)
    counts: dict[str, collections.Counter] = {n: collections.Counter() for n in names}
    reasons: collections.Counter = collections.Counter()
    bugs, slowest, biggest_input = [], (0.0, ""), 0
    rss0 = peak_rss_mb()
    t_start = time.perf_counter()
    for i in range(args.cases):
        name = names[i % len(names)]
        data = GENERATORS[name](rng, files)
        biggest_input = max(biggest_input, len(data))
        t0 = time.perf_counter()
        outcome, detail = run_case(data, models)
        dt = time.perf_counter() - t0
        if dt > slowest[0]:
            slowest = (dt, name)
        if dt > args.max_seconds:
            outcome, detail = "BUG", f"took {dt:.2f} s ({detail})"
        counts[name][outcome] += 1
        if outcome == "FormatError":
            reasons[detail] += 1
        if outcome == "BUG":
            bugs.append({"case": i, "category": name, "detail": detail, "data_hex": data[:256].hex()})
    total_s = time.perf_counter() - t_start
    rss_growth = peak_rss_mb() - rss0

    print(f"{args.cases} cases in {total_s:.1f} s (seed {args.seed}); slowest case {slowest[0] * 1000:.1f} ms "
          f"({slowest[1]}); largest input {biggest_input} bytes; peak RSS grew {rss_growth:.1f} MB over the run")
    print("| category | cases | FormatError | decoded | BUG |")
    print("|---|---|---|---|---|")
    for name in names:
        c = counts[name]
        print(f"| {name} | {sum(c.values())} | {c['FormatError']} | {c['decoded']} | {c['BUG']} |")
    total = sum((counts[n] for n in names), collections.Counter())
    print(f"| all | {sum(total.values())} | {total['FormatError']} | {total['decoded']} | {total['BUG']} |")
    print("\nmost common FormatError messages:")
    for text, n in reasons.most_common(25):
        print(f"  {n:6d}  {text}")
    for bug in bugs[:20]:
        print(f"BUG case {bug['case']} ({bug['category']}): {bug['detail']}")
    if args.csv:
        lines = ["category,cases,format_error,decoded,bug"]
        for name, c in [*((n, counts[n]) for n in names), ("all", total)]:
            lines.append(f"{name},{sum(c.values())},{c['FormatError']},{c['decoded']},{c['BUG']}")
        Path(args.csv).write_text("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "cases": args.cases, "seed": args.seed, "seconds": total_s, "slowest_ms": slowest[0] * 1000,
            "rss_growth_mb": rss_growth, "counts": {n: dict(c) for n, c in counts.items()},
            "reasons": dict(reasons), "bugs": bugs}, indent=1))
    return 1 if bugs else 0


if __name__ == "__main__":
    raise SystemExit(main())
