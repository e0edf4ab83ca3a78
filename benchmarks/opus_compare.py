"""Opus on the same clips and metrics as ``rotcodec eval``: the model card's reference point.

Needs ``opusenc``/``opusdec`` (Debian/Ubuntu: ``apt-get install opus-tools``). The real bitrate is
the Ogg Opus file size over the duration (container overhead included, as for ``.rcq``).
``rotcodec report IN OUT.html --opus`` puts the same Opus round trips beside each bitrate, to listen to.

    python benchmarks/opus_compare.py --data ~/.cache/rotcodec-corpus/speech16k/valid --kbps 6,8 [--json OUT]

``--json`` writes the scores as ``rotcodec eval --json`` does (per clip too), so that a model's
scores compare with Opus's to the last digit and clip by clip.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rotcodec.files import check_output
from rotcodec.evaluate import audio_files, markdown_table, score_clips
from rotcodec.files import atomic_write_text
from rotcodec.io.audio import read_audio
from rotcodec.opus import opus_missing, opus_roundtrip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--kbps", default="6,8")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the scores as JSON")
    ap.add_argument("--force", action="store_true", help="overwrite the --json file if it exists")
    args = ap.parse_args()
    if args.json:
        check_output(Path(args.json), args.force)  # before minutes of scoring, not after
    if opus_missing():
        raise SystemExit(opus_missing())
    clips = [read_audio(f) for f in audio_files(args.data, args.limit)]
    scores = []
    with tempfile.TemporaryDirectory() as tmp:
        for kbps in (float(k) for k in args.kbps.split(",")):
            scores.append(score_clips(f"Opus {kbps:g} kbps", kbps, clips,
                                      lambda wav, sr, kbps=kbps: opus_roundtrip(wav, sr, kbps, Path(tmp))))
    print(markdown_table(scores))
    if args.json:
        check_output(Path(args.json), args.force)
        atomic_write_text(args.json, json.dumps([s.as_dict() for s in scores], indent=2) + "\n")


if __name__ == "__main__":
    main()
