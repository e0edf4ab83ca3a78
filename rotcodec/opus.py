"""Opus as a reference codec: round trips through the ``opusenc``/``opusdec`` command-line tools
(Debian/Ubuntu: ``apt-get install opus-tools``), for ``rotcodec report --opus`` and
``benchmarks/opus_compare.py``. The bytes counted are the whole Ogg Opus file (container overhead
included, as for ``.rcq``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from rotcodec.io.audio import read_audio, write_audio

__all__ = ["opus_missing", "opus_roundtrip", "OPUS_MIN_KBPS"]

OPUS_MIN_KBPS = 6.0
"""opusenc's lowest bitrate per channel: a lower request is coded at this rate."""


def opus_missing() -> str | None:
    """None when ``opusenc`` and ``opusdec`` are on the PATH, else a one-line reason."""
    absent = [tool for tool in ("opusenc", "opusdec") if shutil.which(tool) is None]
    if not absent:
        return None
    return f"{' and '.join(absent)} not found on the PATH (Debian/Ubuntu: apt-get install opus-tools)"


def opus_roundtrip(wav: np.ndarray, sr: int, kbps: float, work: Path) -> tuple[np.ndarray, int]:
    """Encode ``wav [C, T]`` with opusenc at ``kbps`` and decode it back at ``sr`` into the same
    length, using files in the folder ``work``; returns ``(decoded [C, T], Ogg Opus bytes)``."""
    src, enc, dec = work / "in.wav", work / "x.opus", work / "out.wav"
    write_audio(src, wav, sr, force=True)
    for cmd in (["opusenc", "--quiet", "--bitrate", f"{kbps:g}", str(src), str(enc)],
                ["opusdec", "--quiet", "--rate", str(sr), str(enc), str(dec)]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            detail = " ".join((done.stderr or done.stdout).split())[-200:]
            raise RuntimeError(f"{cmd[0]} failed (exit {done.returncode}): {detail}")
    out, _ = read_audio(dec)
    n = wav.shape[-1]
    out = out[:, :n] if out.shape[-1] >= n else np.pad(out, ((0, 0), (0, n - out.shape[-1])))
    return out, enc.stat().st_size
