"""Odd and bad audio through the CLI: each case works sensibly or fails with one line, exit 1,
no traceback, and no output file left behind."""

import os

import numpy as np
import pytest
import soundfile as sf

from rotcodec.cli import main
from rotcodec.io.audio import read_audio

SR = 16000


def tone(seconds=0.5, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def write(path, kind):
    v = tone()
    if kind == "silence":
        sf.write(path, np.zeros(SR // 2, np.float32), SR)
    elif kind == "beyond_one":
        sf.write(path, 3 * v, SR, subtype="FLOAT")
    elif kind in ("PCM_U8", "PCM_16", "PCM_24", "FLOAT"):
        sf.write(path, v, SR, subtype=kind)
    elif kind == "stereo":
        sf.write(path, np.stack([v, v[::-1]], 1), SR)
    elif kind == "six_channels":
        sf.write(path, np.stack([v] * 6, 1), SR)
    elif kind == "8k":
        sf.write(path, tone(sr=8000), 8000)
    elif kind == "96k":
        sf.write(path, tone(sr=96000), 96000)
    elif kind == "flac":
        sf.write(path, v, SR, format="FLAC")
    return path


WORKS = ["silence", "beyond_one", "PCM_U8", "PCM_16", "PCM_24", "FLOAT", "stereo", "six_channels", "8k", "96k", "flac"]


@pytest.mark.parametrize("kind", WORKS)
def test_odd_audio_round_trips(tmp_path, capsys, model_path, kind):
    src = write(tmp_path / "in.wav", kind)
    ref, sr = read_audio(src)
    assert main(["compress", str(src), str(tmp_path / "a.rcq"), "--model", model_path, "-q"]) == 0
    assert main(["decompress", str(tmp_path / "a.rcq"), str(tmp_path / "out.wav"), "--model", model_path, "-q"]) == 0
    out, out_sr = read_audio(tmp_path / "out.wav")
    assert out_sr == sr and out.shape == ref.shape and np.isfinite(out).all()


def _bad(tmp_path, kind):
    v = tone()
    p = tmp_path / "in.wav"
    if kind == "empty_file":
        p.write_bytes(b"")
    elif kind == "zero_samples":
        sf.write(p, np.zeros(0, np.float32), SR)
    elif kind in ("nan", "inf"):
        v[100] = np.nan if kind == "nan" else np.inf
        sf.write(p, v, SR, subtype="FLOAT")
    elif kind == "unsupported_container":
        p = tmp_path / "in.xyz"
        p.write_bytes(b"not audio at all" * 64)
    elif kind == "directory":
        p = tmp_path / "adir"
        p.mkdir()
    elif kind == "missing":
        p = tmp_path / "nothere.wav"
    return p


@pytest.mark.parametrize("kind", ["empty_file", "zero_samples", "nan", "inf", "unsupported_container", "directory", "missing"])
def test_bad_audio_fails_with_one_line_and_no_output(tmp_path, capsys, model_path, kind):
    src = _bad(tmp_path, kind)
    out = tmp_path / "a.rcq"
    code = main(["compress", str(src), str(out), "--model", model_path, "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("rotcodec: error: ")
    assert not out.exists() and not [f for f in os.listdir(tmp_path) if f.startswith((".", "a.rcq"))]


def test_output_in_a_missing_folder(tmp_path, capsys, model_path):
    src = write(tmp_path / "in.wav", "PCM_16")
    code = main(["compress", str(src), str(tmp_path / "no" / "a.rcq"), "--model", model_path, "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "folder does not exist" in err[0]
    assert not (tmp_path / "no").exists()
