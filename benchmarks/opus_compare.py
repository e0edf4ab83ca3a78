"""Opus on the same clips and metrics as ``rotcodec eval``: the model card's reference point.

Needs ``opusenc``/``opusdec`` (Debian/Ubuntu: ``apt-get install opus-tools``). The real bitrate is
the Ogg Opus file size over the duration (container overhead included, as for ``.rcq``).

    python benchmarks/opus_compare.py --data ~/.cache/rotcodec-corpus/speech16k/valid --kbps 6,8
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from rotcodec.evaluate import aggregate, audio_files, markdown_table, score_pair
from rotcodec.io.audio import read_audio, write_audio


def opus_roundtrip(wav: np.ndarray, sr: int, kbps: float, work: Path) -> tuple[np.ndarray, int]:
    """Encode ``wav [C, T]`` with opusenc at ``kbps`` and decode it back at ``sr``; returns (decoded, bytes)."""
    src, enc, dec = work / "in.wav", work / "x.opus", work / "out.wav"
    write_audio(src, wav, sr, force=True)
    subprocess.run(["opusenc", "--quiet", "--bitrate", str(kbps), str(src), str(enc)], check=True)
    subprocess.run(["opusdec", "--quiet", "--rate", str(sr), str(enc), str(dec)], check=True)
    out, _ = read_audio(dec)
    n = wav.shape[-1]
    out = out[:, :n] if out.shape[-1] >= n else np.pad(out, ((0, 0), (0, n - out.shape[-1])))
    return out, enc.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--kbps", default="6,8")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    if not (shutil.which("opusenc") and shutil.which("opusdec")):
        raise SystemExit("opusenc/opusdec not found: apt-get install opus-tools")
    clips = [read_audio(f) for f in audio_files(args.data, args.limit)]
    scores = []
    with tempfile.TemporaryDirectory() as tmp:
        for kbps in (float(k) for k in args.kbps.split(",")):
            rows, bits, seconds = [], 0.0, 0.0
            for wav, sr in clips:
                est, size = opus_roundtrip(wav, sr, kbps, Path(tmp))
                rows.append(score_pair(wav, est, sr))
                bits += 8 * size
                seconds += wav.shape[-1] / sr
            scores.append(aggregate(f"Opus {kbps:g} kbps", kbps, rows, bits, seconds))
    print(markdown_table(scores))


if __name__ == "__main__":
    main()
