"""Property tests of the whole read path (container + header-vs-model checks + decoder): whatever a
token file holds, ``decompress`` either decodes it to the length its header announces or raises
FormatError. Format 2 (JSON header) is attacked through its JSON, format 3 (fixed binary header)
through its raw fields, format 4 (the default, varints and flags) through the parts of its header,
its short form of a known context model (flag KNOWN_CTX) too, with the bundled model that decodes it.
(Container-only properties are in test_container.py; the 10,000-case run is benchmarks/fuzz_rcq.py,
smoke-tested at the end.)"""

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import rotcodec
from rotcodec.entropy import bundled
from rotcodec.errors import FormatError
from rotcodec.io.container import (
    FORMAT_VERSION, KNOWN_CONTEXT_MODELS, KNOWN_MODELS, MAGIC, dumps, loads_gains, read_header,
)
from rotcodec.io.container import _varint as varint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from fuzz_rcq import (  # noqa: E402  (the fuzz run's own format-3 and format-4 surgery)
    BUNDLED, CTX4, FIXED3, KNOWN_CTX, VARINTS4, build3, build4, build4_as_read, build_entropy, ctx_tails,
    known_ctx_files, register_context_model, set_ctx, set_flags, split3, split4, split_entropy,
)

PREFIX = struct.Struct("<4sBI")
CRC = struct.Struct("<I")
FIELDS3 = ("coding", "ch", "n_q", "bits", "sr", "orig_sr", "fps", "frames", "len", "chunk", "overlap", "g")
ROOT = Path(__file__).resolve().parent.parent
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def model(model_path):
    return rotcodec.load_model(model_path)


def stereo_wav() -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal((2, 4410))).astype(np.float32)


@pytest.fixture(scope="module")
def valid4(model):
    """What ``compress`` writes: format 4 (44.1 kHz in, so the header has an original rate)."""
    return rotcodec.compress(stereo_wav(), 44100, model)


@pytest.fixture(scope="module")
def valid3(valid4):
    """The same file in format 3, whose fixed fields the tests below rewrite."""
    return dumps(*loads_gains(valid4), version=3)


@pytest.fixture(scope="module")
def valid(valid4):
    """The same file in format 2, whose JSON header the tests below rewrite."""
    return dumps(*loads_gains(valid4), version=2)


@pytest.fixture(scope="module")
def valid4e(model, valid4):
    """The same audio entropy-coded in format 4 (a tiny context model registered for the tiny model)."""
    register_context_model(model)
    data = rotcodec.compress(stereo_wav(), 44100, model, entropy=True)
    assert data[4] == 4 and data[5] & 3 == 1
    assert torch.equal(rotcodec.decompress(data, model)[0], rotcodec.decompress(valid4, model)[0])
    yield data
    bundled.unregister(f"{model.config.name}{bundled.SUFFIX}")


@pytest.fixture(scope="module")
def valid3e(model, valid4e):
    """The entropy-coded file in format 3 (its context model found by name)."""
    data = dumps(*loads_gains(valid4e), version=3)
    assert data[4] == 3 and data[5] == 1
    assert torch.equal(rotcodec.decompress(data, model)[0], rotcodec.decompress(valid4e, model)[0])
    return data


@pytest.fixture(scope="module")
def entropy_files(valid3e, valid4e):
    return {3: valid3e, 4: valid4e}


def parts(data: bytes) -> tuple[dict, bytes]:
    """``(header, gains + codes)`` of a valid file: what the payload CRC covers."""
    _, _, n = PREFIX.unpack_from(data)
    return json.loads(data[PREFIX.size: PREFIX.size + n]), data[PREFIX.size + n + CRC.size: -CRC.size]


def assemble(header_raw: bytes, payload: bytes, header_len: int | None = None) -> bytes:
    n = len(header_raw) if header_len is None else header_len
    return (PREFIX.pack(MAGIC, 2, n) + header_raw + CRC.pack(zlib.crc32(header_raw)) + payload
            + CRC.pack(zlib.crc32(payload)))


def decodes_or_format_error(data: bytes, model) -> torch.Tensor | None:
    try:
        wav, _ = rotcodec.decompress(data, model)
    except FormatError:
        return None
    assert torch.isfinite(wav).all()
    return wav


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def test_the_unmutated_file_decodes(valid, valid3, valid4, valid3e, valid4e, model):
    assert FORMAT_VERSION == 4 and valid4[4] == 4 and valid3[4] == 3 and valid[4] == 2
    wav = decodes_or_format_error(valid4, model)
    assert wav is not None and wav.shape == (2, 4410)
    for data in (valid3, valid, valid3e, valid4e):  # formats 2, 3 and 4, bit-packed or entropy-coded: one audio
        assert torch.equal(decodes_or_format_error(data, model), wav)
    header, payload = parts(valid)
    assert torch.equal(decodes_or_format_error(assemble(json.dumps(header).encode(), payload), model), wav)
    assert build3(*split3(valid3)) == valid3
    assert build4(*split4(valid4)) == valid4 and build4(*split4(valid4e)) == valid4e
    assert build_entropy(*split_entropy(valid3e)) == valid3e and build_entropy(*split_entropy(valid4e)) == valid4e
    names = [name for name, _ in split4(valid4)[0]]
    assert names == ["flags", "shape", "sample_rate", "orig_sr", "hop", "frames", "length", "chunk_frames",
                     "chunk_overlap", "gain_frames", "model", "hash"]
    assert [name for name, _ in split4(valid4e)[0]] == names + ["ctx_model", "ctx_hash", "payload_size"]


RAW_VALUES = st.sampled_from([0, 1, 2, 3, 15, 16, 17, 50, 64, 65, 127, 255, 256, 2**16 - 1, 2**16, 16000, 44100,
                              2**31, 2**32 - 1, 2**50, 2**63, 2**64 - 1]) | st.integers(0, 2**64 - 1)
FLOATS = st.floats() | st.sampled_from([50.0, 49.999999, 50.000001, 0.0, -0.0, 1e-320, 1e308])


@SETTINGS
@given(index=st.integers(0, len(FIELDS3) - 1), value=RAW_VALUES, fps=FLOATS)
def test_format3_any_value_in_any_field_decodes_or_is_a_format_error(valid3, model, index, value, fps):
    fixed, strings, payload = split3(valid3)
    if FIELDS3[index] == "fps":
        fixed[index] = fps
    else:  # the value cut to the field's width, as raw bytes would hold it
        fixed[index] = value % (1 << (8 * struct.calcsize("<" + FIXED3.format[1 + index])))
    wav = decodes_or_format_error(build3(fixed, strings, payload), model)
    if wav is not None:
        assert wav.shape == (fixed[1], fixed[8])


@SETTINGS
@given(model_id=st.binary(max_size=80), digits=st.integers(0, 255), hash_bytes=st.binary(max_size=40))
def test_format3_any_model_id_and_hash_decode_or_are_format_errors(valid3, model, model_id, digits, hash_bytes):
    fixed, strings, payload = split3(valid3)
    wav = decodes_or_format_error(build3(fixed, bytes([len(model_id)]) + model_id + bytes([digits]) + hash_bytes,
                                            payload), model)
    assert wav is None  # only the real model id and hash decode with this model


@SETTINGS
@given(key=st.sampled_from(["model", "hash", "sr", "orig_sr", "ch", "n_q", "bits", "fps", "frames", "len",
                            "chunk", "overlap", "g"]), value=json_values)
def test_any_value_in_any_field_decodes_or_is_a_format_error(valid, model, key, value):
    header, payload = parts(valid)
    header[key] = value
    wav = decodes_or_format_error(assemble(json.dumps(header).encode(), payload), model)
    if wav is not None:  # only harmless changes decode, and then to the announced shape
        assert wav.shape == (int(header["ch"]), int(header["len"]))


@SETTINGS
@given(frames=st.integers(-5, 10**7), length=st.integers(-5, 10**9), orig_sr=st.integers(-5, 2 * 10**6))
def test_sizes_that_disagree_are_format_errors_before_any_big_allocation(valid, model, frames, length, orig_sr):
    header, payload = parts(valid)
    header.update(frames=frames, len=length, orig_sr=orig_sr)
    wav = decodes_or_format_error(assemble(json.dumps(header).encode(), payload), model)
    if wav is not None:
        assert wav.shape == (2, length) and length <= 10 * 4410


@SETTINGS
@given(header_len=st.integers(0, 2**32 - 1))
def test_a_wrong_header_length_is_a_format_error(valid, model, header_len):
    header, payload = parts(valid)
    raw = json.dumps(header).encode()
    wav = decodes_or_format_error(assemble(raw, payload, header_len), model)
    assert (wav is not None) == (header_len == len(raw))


@SETTINGS
@given(payload=st.binary(max_size=2000))
def test_any_payload_with_a_good_crc_decodes_or_is_a_format_error(valid, model, payload):
    header, real = parts(valid)
    wav = decodes_or_format_error(assemble(json.dumps(header).encode(), payload), model)
    assert (wav is not None) == (len(payload) == len(real))


@pytest.mark.parametrize("version", [3, 4])
@SETTINGS
@given(payload=st.binary(max_size=600), size=st.none() | st.integers(0, 2**32 - 1) | st.binary(max_size=7))
def test_entropy_coded_any_payload_decodes_or_is_a_format_error(entropy_files, model, version, payload, size):
    """Garbage range-coder input ends (FormatError or codes, never a hang or another error), and so
    does any payload size field (any value, or any bytes: non-shortest, endless)."""
    head, ctx_id, ctx_hash, real_size, body = split_entropy(entropy_files[version])
    gains = body[: len(body) - real_size]
    wav = decodes_or_format_error(build_entropy(head, ctx_id, ctx_hash, len(payload) if size is None else size,
                                                gains + payload), model)
    if wav is not None:
        assert wav.shape == (2, 4410)


@pytest.mark.parametrize("version", [3, 4])
@SETTINGS
@given(ctx_id=st.binary(max_size=60), digits=st.integers(0, 255), hash_bytes=st.binary(max_size=40))
def test_entropy_coded_any_context_model_name_is_a_format_error(entropy_files, model, version, ctx_id, digits,
                                                                 hash_bytes):
    head, real_id, real_hash, size, body = split_entropy(entropy_files[version])
    wav = decodes_or_format_error(build_entropy(head, bytes([len(ctx_id)]) + ctx_id, bytes([digits]) + hash_bytes,
                                                size, body), model)
    assert wav is None or (bytes([len(ctx_id)]) + ctx_id == real_id)


# ----- format 4: the parts of its header (benchmarks/fuzz_rcq.py's split4 / build4) -----------------
VARINT_VALUES = RAW_VALUES | st.integers(0, 2**70 - 1)
PART_BYTES = st.binary(max_size=12) | st.sampled_from([b"", b"\x00", b"\x80\x00", b"\xff" * 11, b"\x80" * 10 + b"\x01"])


def announced_shape(data: bytes) -> tuple[int, int]:
    header = read_header(io.BytesIO(data))
    return header.channels, header.length


@SETTINGS
@given(index=st.integers(0, 11), value=VARINT_VALUES, longer=st.integers(0, 2), raw=PART_BYTES,
       how=st.sampled_from(["value", "bytes"]))
def test_format4_any_value_in_any_part_decodes_or_is_a_format_error(valid4, model, index, value, longer, raw, how):
    """A varint part set to any value (in its shortest form, or ``longer`` bytes longer than needed),
    or any part of the header replaced by any bytes: a FormatError, or the audio the header announces."""
    parts, body = split4(valid4)
    name = parts[index][0]
    if how == "value" and name in VARINTS4:
        raw = varint(value)
        if longer:
            raw = raw[:-1] + bytes([raw[-1] | 0x80]) + b"\x80" * (longer - 1) + b"\x00"
    elif how == "value":  # flags, shape, model, hash: a value of the part's own width
        raw = (value % 256 ** len(parts[index][1])).to_bytes(len(parts[index][1]), "little")
    parts[index] = (name, raw)
    data = build4(parts, body)
    wav = decodes_or_format_error(data, model)
    if wav is not None:
        assert wav.shape == announced_shape(data)
        if how == "value" and name == "length":
            assert wav.shape[1] == value
        assert not (how == "value" and name in VARINTS4 and longer)  # a longer varint is never read
        written = split4(dumps(*loads_gains(data)))[0]  # what decodes is in its one encoding:
        assert b"".join(raw for _, raw in written) == b"".join(raw for _, raw in parts)  # (the same bytes)


@SETTINGS
@given(known=st.booleans(), number=st.integers(0, 255), version=VARINT_VALUES, model_id=st.binary(max_size=80),
       hash16=st.booleans(), real_hash=st.booleans(), digits=st.integers(0, 255), hash_bytes=st.binary(max_size=40))
def test_format4_any_model_and_hash_but_the_real_ones_are_format_errors(valid4, model, known, number, version,
                                                                        model_id, hash16, real_hash, digits,
                                                                        hash_bytes):
    """Any model number (KNOWN_MODEL: 0..255, any version) or id, with any weights hash in either
    form: a FormatError with this model unless the hash is its own, in its one encoding (HASH16)."""
    parts, body = split4(valid4)
    flags = parts[0][1][0] & ~0x24
    named = dict(parts)
    if known:
        flags |= 0x04
        model_part = [("model_number", bytes([number])), ("model_version", varint(version))]
    else:
        model_part = [("model", bytes([len(model_id) % 256]) + model_id)]
    if hash16:
        flags |= 0x20
        hash_part = named["hash"] if real_hash else hash_bytes[:8].ljust(8, b"\x00")
    else:  # a length byte and digits (the real 16 digits too: not their one encoding)
        hash_part = bytes([16]) + named["hash"] if real_hash else bytes([digits]) + hash_bytes
    i = [name for name, _ in parts].index("model")
    parts = [("flags", bytes([flags])), *parts[1:i], *model_part, ("hash", hash_part)]
    wav = decodes_or_format_error(build4(parts, body), model)
    if hash_part != named["hash"] or not hash16:
        assert wav is None
    elif known and 1 <= number <= len(KNOWN_MODELS) and version < 2**32:
        assert wav is not None  # the weights hash is the check: the model's name is not


# ----- format 4's short form of a known context model (flag KNOWN_CTX, 0x40) --------------------------
@pytest.fixture(scope="module")
def bundled_model():
    """The bundled model whose context model is KNOWN_CONTEXT_MODELS[0] (it ships with rotcodec)."""
    return rotcodec.load_model(BUNDLED)


@pytest.fixture(scope="module")
def known4(bundled_model):
    """``{(own, form): file}``: entropy-coded format-4 files of the bundled context model, as the fuzz
    run builds them (headers like the bundled model's, random codes): the model's own id (3 stages,
    100 frames) or another one (4 stages, 20 frames), each in the short and the long form."""
    files = known_ctx_files(bundled_model)
    return {("own", "short"): files[0], ("own", "long"): files[1], ("other", "short"): files[-2],
            ("other", "long"): files[-1]}


def test_format4_a_known_context_model_in_either_form_decodes_alike(known4, bundled_model):
    """The short form (the number) and the long form (id and hash, format 4 before KNOWN_CTX)
    decode to the same audio; the long form re-encodes to the short one, byte for byte."""
    for own in ("own", "other"):
        short, long = known4[own, "short"], known4[own, "long"]
        assert short[5] & KNOWN_CTX and not long[5] & KNOWN_CTX and len(long) > len(short)
        assert [n for n, _ in split4(short)[0]][-2:] == ["ctx_number", "payload_size"]
        assert [n for n, _ in split4(long)[0]][-3:] == ["ctx_model", "ctx_hash", "payload_size"]
        assert build4(*split4(short)) == short and build4(*split4(long)) == long
        assert build_entropy(*split_entropy(short)) == short and build_entropy(*split_entropy(long)) == long
        assert dict(split4(long)[0])["ctx_model"] == (b"\x00" if own == "own" else b"\x13stft16k-cpu.entropy")
        assert ctx_tails(short) == ctx_tails(long)
        h, codes, gains = loads_gains(long)
        assert (h.context_model, h.context_hash) == KNOWN_CONTEXT_MODELS[0]
        assert dumps(h, codes, gains) == short
        wav = decodes_or_format_error(short, bundled_model)
        assert wav is not None and torch.equal(decodes_or_format_error(long, bundled_model), wav)


def flip_form(data: bytes) -> list[tuple[str, bytes]]:
    """The header parts of ``data`` (a valid file of a known context model) in the other form."""
    parts, _ = split4(data)
    short, long = ctx_tails(data)
    if data[5] & KNOWN_CTX:
        set_flags(parts, off=KNOWN_CTX)
        set_ctx(parts, long)
    else:
        set_flags(parts, on=KNOWN_CTX)
        set_ctx(parts, short)
    return parts


@pytest.mark.parametrize("case,match", [
    ("number 0", "context model number 0 is not one"),
    ("number 3", "context model number 3 is not one"),
    ("number 255", "context model number 255 is not one"),
    ("flag off, short tail", None),         # the number read as an id length: a FormatError of some kind
    ("flag on, long tail", None),           # an id length read as a number, the rest as the payload size
    ("own id in full", "one encoding"),     # the long form with the model's own context model named
    ("flag on a bit-packed file", "one encoding"),
    ("flag and a tail on a bit-packed file", "header CRC"),  # a bit-packed header has no tail: CRC misplaced
    ("coding 2 beside the flag", "payload coding 2"),  # (without the tail, which coding 2 does not have)
    ("reserved bit beside the flag", "format-4 flags 0x[c-f][0-9a-f]; upgrade"),
    ("long form", "decodes"),
    ("short form of the long form", "decodes"),
])
def test_format4_known_context_tails(known4, bundled_model, valid4, case, match):
    short_file, long_file = known4["own", "short"], known4["own", "long"]
    parts, body = split4(short_file)
    short, long = ctx_tails(short_file)
    data = None
    if case.startswith("number"):
        set_ctx(parts, [("ctx_number", bytes([int(case.split()[1])]))])
    elif case == "flag off, short tail":
        set_flags(parts, off=KNOWN_CTX)
    elif case == "flag on, long tail":
        set_ctx(parts, long)
    elif case == "own id in full":
        set_flags(parts, off=KNOWN_CTX)
        set_ctx(parts, [("ctx_model", b"\x13stft16k-cpu.entropy"), long[1]])
    elif case.endswith("bit-packed file"):
        parts, body = split4(valid4)
        set_flags(parts, on=KNOWN_CTX)
        if case.startswith("flag and a tail"):
            parts += [("ctx_number", b"\x01"), ("payload_size", varint(len(body)))]
    elif case == "coding 2 beside the flag":
        set_flags(parts, off=0x03)
        set_flags(parts, on=0x02)
        parts = [p for p in parts if p[0] not in CTX4 + ("payload_size",)]
    elif case == "reserved bit beside the flag":
        set_flags(parts, on=0x80)
    elif case == "long form":
        data = long_file
    else:
        data = build4(flip_form(long_file), body)
    data = build4(parts, body) if data is None else data
    if match == "decodes":
        wav = decodes_or_format_error(short_file, bundled_model)
        assert torch.equal(decodes_or_format_error(data, bundled_model), wav)
        assert data in (short_file, long_file)
    else:
        with pytest.raises(FormatError, match=match):
            rotcodec.decompress(data, bundled_model)


@pytest.mark.parametrize("own", ["own", "other"])
@SETTINGS
@given(flag=st.booleans(),
       tail=st.sampled_from(["number", "number", "long", "short+long", "long+short", "bytes", "none"]),
       number=st.sampled_from([1, 1, 2]) | st.integers(0, 255), raw=PART_BYTES,
       size=st.one_of(st.none(), st.none(), st.none(), VARINT_VALUES, PART_BYTES), as_read=st.booleans())
@example(flag=True, tail="number", number=1, raw=b"", size=None, as_read=False)  # the file itself
@example(flag=True, tail="number", number=2, raw=b"", size=None, as_read=False)  # the other known context model
@example(flag=False, tail="long", number=1, raw=b"", size=None, as_read=False)  # the long form (read, not written)
@example(flag=False, tail="number", number=1, raw=b"", size=None, as_read=True)  # the number read as an id length
def test_format4_any_known_context_tail_decodes_or_is_a_format_error(known4, bundled_model, own, flag, tail, number,
                                                                     raw, size, as_read):
    """The short-form file's flag KNOWN_CTX on or off and its context-model tail any number, the
    long tail, both tails, any bytes or none, its payload size any value or bytes, the header CRC
    where the tail was or where a reader of the changed bytes ends the header: a FormatError, or
    audio of a header in its one encoding (``dumps`` writes the same header bytes), except the
    long form of a known context model, which is read and re-encodes to the short form."""
    short_file = known4[own, "short"]
    parts, body = split4(short_file)
    short, long = ctx_tails(short_file)
    set_flags(parts, on=KNOWN_CTX if flag else 0, off=0 if flag else KNOWN_CTX)
    set_ctx(parts, {"number": [("ctx_number", bytes([number]))], "long": long, "short+long": short + long,
                    "long+short": long + short, "bytes": [("ctx_raw", raw)], "none": []}[tail])
    if size is not None:
        size_raw = size if isinstance(size, bytes) else varint(size)
        parts = [(n, size_raw if n == "payload_size" else r) for n, r in parts]
    data = (build4_as_read if as_read else build4)(parts, body)
    wav = decodes_or_format_error(data, bundled_model)
    if wav is None:
        return
    assert wav.shape == announced_shape(data)
    h, codes, gains = loads_gains(data)
    read = [p for p in split4(data)[0] if p[0] != "payload_size"]  # a random payload may re-encode shorter
    again = dumps(h, codes, gains)
    if not data[5] & KNOWN_CTX:  # the long form: only of a known context model, and rewritten short
        assert (h.context_model, h.context_hash) in KNOWN_CONTEXT_MODELS
        read = [p for p in flip_form(data) if p[0] != "payload_size"]
    assert [p for p in split4(again)[0] if p[0] != "payload_size"] == read
    original, original_codes, _ = loads_gains(short_file)
    if h == original and (codes == original_codes).all():
        assert again == short_file


def test_fuzz_script_runs_clean(tmp_path):
    """The bounded fuzzer itself (a short run here; its 10,000-case figures are in the notes)."""
    out = tmp_path / "fuzz.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fuzz_rcq.py"), "--cases", "400",
                           "--seed", "1", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["bugs"] == []
    assert sum(sum(c.values()) for c in report["counts"].values()) == 400
    assert {"field3", "sizes3", "coding3", "entropy3"} <= set(report["counts"])  # format 3, entropy-coded too
    assert {"field4", "sizes4", "entropy4"} <= set(report["counts"])  # format 4, entropy-coded too
    assert "knownctx4" in report["counts"]  # format 4's short form of a known context model
    assert all(sum(report["counts"][name].values()) > 0 for name in ("field4", "sizes4", "entropy4", "knownctx4"))
    assert all(c.get("FormatError", 0) == sum(c.values()) > 0 for name, c in report["counts"].items()
               if name in ("random", "truncate", "bitflip", "append"))
