"""Property tests of the whole read path (container + header-vs-model checks + decoder): whatever a
token file holds, ``decompress`` either decodes it to the length its header announces or raises
FormatError. Format 2 (JSON header) is attacked through its JSON, format 3 (binary header, the
default) through its raw fields. (Container-only properties are in test_container.py; the
10,000-case run is benchmarks/fuzz_rcq.py, smoke-tested at the end.)"""

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rotcodec
from rotcodec.entropy import bundled
from rotcodec.errors import FormatError
from rotcodec.io.container import FORMAT_VERSION, MAGIC, dumps, loads_gains

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from fuzz_rcq import (  # noqa: E402  (the fuzz run's own format-3 surgery)
    FIXED3, build3, build3e, register_context_model, split3, split3e,
)

PREFIX = struct.Struct("<4sBI")
CRC = struct.Struct("<I")
FIELDS3 = ("coding", "ch", "n_q", "bits", "sr", "orig_sr", "fps", "frames", "len", "chunk", "overlap", "g")
ROOT = Path(__file__).resolve().parent.parent
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def model(model_path):
    return rotcodec.load_model(model_path)


@pytest.fixture(scope="module")
def valid3(model):
    wav = (0.1 * np.random.default_rng(0).standard_normal((2, 4410))).astype(np.float32)
    return rotcodec.compress(wav, 44100, model)


@pytest.fixture(scope="module")
def valid3e(model, valid3):
    """The same audio entropy-coded (a tiny context model registered for the tiny model)."""
    register_context_model(model)
    wav = (0.1 * np.random.default_rng(0).standard_normal((2, 4410))).astype(np.float32)
    data = rotcodec.compress(wav, 44100, model, entropy=True)
    assert data[5] == 1 and torch.equal(rotcodec.decompress(data, model)[0], rotcodec.decompress(valid3, model)[0])
    yield data
    bundled.unregister(f"{model.config.name}{bundled.SUFFIX}")


@pytest.fixture(scope="module")
def valid(valid3):
    """The same file in format 2, whose JSON header the tests below rewrite."""
    return dumps(*loads_gains(valid3), version=2)


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


def test_the_unmutated_file_decodes(valid, valid3, model):
    assert FORMAT_VERSION == 3 and valid3[4] == 3 and valid[4] == 2
    wav = decodes_or_format_error(valid, model)
    assert wav is not None and wav.shape == (2, 4410)
    assert torch.equal(decodes_or_format_error(valid3, model), wav)
    header, payload = parts(valid)
    assert torch.equal(decodes_or_format_error(assemble(json.dumps(header).encode(), payload), model), wav)
    assert torch.equal(decodes_or_format_error(build3(*split3(valid3)), model), wav)


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


@SETTINGS
@given(payload=st.binary(max_size=600), size=st.none() | st.integers(0, 2**32 - 1))
def test_entropy_coded_any_payload_decodes_or_is_a_format_error(valid3e, model, payload, size):
    """Garbage range-coder input ends (FormatError or codes, never a hang or another error)."""
    head, ctx_id, ctx_hash, real_size, body = split3e(valid3e)
    gains = body[: len(body) - real_size]
    wav = decodes_or_format_error(build3e(head, ctx_id, ctx_hash, len(payload) if size is None else size,
                                          gains + payload), model)
    if wav is not None:
        assert wav.shape == (2, 4410)


@SETTINGS
@given(ctx_id=st.binary(max_size=60), digits=st.integers(0, 255), hash_bytes=st.binary(max_size=40))
def test_entropy_coded_any_context_model_name_is_a_format_error(valid3e, model, ctx_id, digits, hash_bytes):
    head, real_id, real_hash, size, body = split3e(valid3e)
    wav = decodes_or_format_error(build3e(head, bytes([len(ctx_id)]) + ctx_id, bytes([digits]) + hash_bytes,
                                          size, body), model)
    assert wav is None or (bytes([len(ctx_id)]) + ctx_id == real_id)


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
    assert all(c.get("FormatError", 0) == sum(c.values()) > 0 for name, c in report["counts"].items()
               if name in ("random", "truncate", "bitflip", "append"))
