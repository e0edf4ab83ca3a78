"""The recording-conditions table of the model card, as data: ``docs/conditions.csv``.

One row per (weights, folder, condition, codec): PESQ-WB, its change from "as recorded" and the
real bitrate, from ``rotcodec eval --conditions`` (:mod:`rotcodec.conditions`). Rows of the same
weights and folder are replaced, others kept, so rounds stand side by side:

    python benchmarks/conditions_table.py --label round12 --limit 50 \\
        --data ~/.cache/rotcodec-corpus/unseen16k --data ~/.cache/rotcodec-corpus/unseenx16k
    python benchmarks/conditions_table.py --label round11 --from unseen16k=runs/conditions/round11_unseen16k.json

``--from FOLDER=JSON`` adds a ``rotcodec eval --conditions --json`` file already made.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

FIELDS = ["weights", "folder", "clips", "condition", "codec", "pesq", "vs_as_recorded", "kbps_real"]
DEFAULT = Path(__file__).resolve().parent.parent / "docs" / "conditions.csv"


def table_rows(rows: list[dict], label: str, folder: str) -> list[dict]:
    """CSV rows of one folder's ``evaluate_conditions`` rows."""
    base = {r["codec"]: r["pesq"] for r in rows if r["condition"] == "as recorded"}
    return [{"weights": label, "folder": folder, "clips": r["clips"], "condition": r["condition"], "codec": r["codec"],
             "pesq": f"{r['pesq']:.3f}", "vs_as_recorded": f"{r['pesq'] - base[r['codec']]:+.3f}",
             "kbps_real": f"{r['kbps_real']:.2f}"} for r in rows]


def merge(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` without the (weights, folder) pairs that ``new`` holds, then ``new``."""
    replaced = {(r["weights"], r["folder"]) for r in new}
    return [r for r in old if (r["weights"], r["folder"]) not in replaced] + new


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--label", required=True, help="which weights, e.g. round12")
    p.add_argument("--data", action="append", default=[], help="folders to score (repeatable)")
    p.add_argument("--from", dest="inputs", action="append", default=[], metavar="FOLDER=JSON",
                   help="a rotcodec eval --conditions --json file of FOLDER")
    p.add_argument("--model", default=None, help="model file or bundled name (default: the default model)")
    p.add_argument("--kbps", default="3,6")
    p.add_argument("--opus", default="8", help="Opus bitrates beside rotcodec ('' for none)")
    p.add_argument("--limit", type=int, default=None, help="at most N files per folder")
    p.add_argument("--out", default=str(DEFAULT))
    args = p.parse_args(argv)
    new = []
    for item in args.inputs:
        folder, path = item.split("=", 1)
        new += table_rows(json.loads(Path(path).read_text()), args.label, folder)
    if args.data:
        import rotcodec
        from rotcodec.conditions import coders_for, evaluate_conditions
        from rotcodec.evaluate import audio_files
        from rotcodec.io.audio import read_audio
        from training_round import folder_key

        model = rotcodec.load_model(args.model)
        coders = coders_for(model, [float(k) for k in args.kbps.split(",")],
                            [float(k) for k in args.opus.split(",") if k])
        for folder in args.data:
            clips = [read_audio(f) for f in audio_files(folder, args.limit)]
            rows = evaluate_conditions(clips, coders)
            new += table_rows(rows, args.label, folder_key(folder))
            print(f"{folder_key(folder)}: {len(clips)} clips", flush=True)
    out = Path(args.out)
    old = list(csv.DictReader(out.read_text().splitlines())) if out.exists() else []
    out.write_text(to_csv(merge(old, new)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
