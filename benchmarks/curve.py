"""The curve of all training rounds as a markdown table, from the runs' own logs.

Each round's ``log.jsonl`` holds the trainer's validation rows (``split == "valid"``: mel distance,
PESQ-WB, SI-SDR, mel at half the stages) and, when the round cooled its learning rate, a
``cooldown`` row at the step it began. A round continued with ``--continue-from`` copies the
previous log up to that step, so later logs repeat earlier rows: a row equal to one already
printed is left out. Rows after a cool-down began are marked with their run's name: the cooled
branch, which a ``--continue-from`` round does not continue (its own rows at the same steps
follow it) and a fresh machine's ``--init`` round does.

    python benchmarks/curve.py runs/round2 runs/round3 --every 2000

prints the model card's curve table. A round begun on a fresh machine from the shipped weights
(``--init``) counts its steps from 0: ``runs/round4@34091`` adds the shipped model's 34,091 steps
to its rows. Hours seen count ``--batch-seconds`` of audio a step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def run_arg(text: str) -> tuple[Path, int]:
    """``RUN`` or ``RUN@STEPS`` (steps the run's model had before its step 0) -> ``(folder, steps)``."""
    path, at, steps = text.rpartition("@")
    if at and steps.isdigit():
        return Path(path), int(steps)
    return Path(text), 0


def read_rows(run: Path, offset: int = 0) -> tuple[list[dict], int | None]:
    """``(valid rows in order, step the cool-down began or None)`` of one run folder, its steps
    counted from ``offset``."""
    rows, cooldown = [], None
    with open(run / "log.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row.get("split") == "valid":
                rows.append({**row, "step": row["step"] + offset})
            elif row.get("split") == "cooldown":
                cooldown = row["step"] + offset
    return rows, cooldown


def curve(runs: list[tuple[Path, int]], every: int) -> list[tuple[dict, str]]:
    """``(row, label)`` for every ``every``-th step and each run's last row; rows copied from an
    earlier run are given once. A run is ``(folder, steps before its step 0)``, as ``run_arg`` gives."""
    out, seen = [], set()
    for run, offset in runs:
        rows, cooldown = read_rows(run, offset)
        last = rows[-1]["step"] if rows else None
        for row in rows:
            step, key = row["step"], json.dumps(row, sort_keys=True)
            if key in seen or ((step - offset) % every and step != last):  # the grid of the run's own steps
                continue
            seen.add(key)
            out.append((row, f" ({run.name} cool-down)" if cooldown is not None and step > cooldown else ""))
    return sorted(out, key=lambda item: item[0]["step"])


def table(items: list[tuple[dict, str]], batch_seconds: float) -> str:
    lines = ["| step | audio seen (h) | mel | PESQ-WB | SI-SDR (dB) | mel at half the stages |",
             "|---|---|---|---|---|---|"]
    for row, label in items:
        lines.append(f"| {row['step']:,}{label} | {row['step'] * batch_seconds / 3600:.1f} | {row['mel']:.3f} | "
                     f"{row['pesq']:.2f} | {row['si_sdr']:.1f} | {row['mel_half']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=run_arg,
                    help="run folders, oldest first; RUN@STEPS for a run begun with --init from a model with STEPS steps")
    ap.add_argument("--every", type=int, default=2000, help="print every N-th step (and each run's last)")
    ap.add_argument("--batch-seconds", type=float, default=8.0, help="seconds of audio a step (batch x segment)")
    args = ap.parse_args(argv)
    if args.every < 1:
        ap.error("--every must be at least 1")
    print(table(curve(args.runs, args.every), args.batch_seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
