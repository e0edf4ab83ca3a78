"""Clip-by-clip comparison of two scorings of the same clips: is A better than B, beyond the noise?

A training round now gains 0.01-0.03 PESQ-WB, far less than the spread of the clips' own scores.
Pairing the clips removes that spread: for each bitrate this prints the mean of
``A - B`` per clip, its standard error, and how many clips rose, from two JSON files of
``rotcodec eval --json`` (or ``benchmarks/opus_compare.py --json``, or a shipped model's
``<name>.scores.json``: its first folder, or ``--folder``) made on the same folder:

    python benchmarks/paired.py runs/round11/eval_speech16k_valid.json rotcodec/pretrained/stft16k-cpu.scores.json
    python benchmarks/paired.py NEW.json runs/opus/speech16k_valid.json --pair 6:8    # rotcodec 6 vs Opus 8 kbps

A clip without a score in either file (PESQ fails on near-silence) is left out of that metric.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

METRICS = ("pesq", "stoi", "si_sdr")


@dataclass(frozen=True)
class Paired:
    kbps_a: float
    kbps_b: float
    metric: str
    mean_a: float
    mean_b: float
    diff: float  # mean of a - b over the clips both scored
    stderr: float  # its standard error (sample std / sqrt(n))
    up: int  # clips where a > b
    n: int


def load(path: str | Path, folder: str | None = None) -> dict[float, dict]:
    """``{nominal kbps: score}`` of one JSON file: a list of scores, or a scores file
    (``{"scores": {folder: [...]}}``, its first folder unless ``folder``). ValueError without
    per-clip rows."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict):
        by_folder = data.get("scores") or {}
        if not by_folder or (folder is not None and folder not in by_folder):
            raise ValueError(f"{path}: no scores for {folder or 'any folder'} (it has {', '.join(by_folder) or 'none'})")
        data = by_folder[folder] if folder is not None else next(iter(by_folder.values()))
    scores = {}
    for s in data:
        if not s.get("per_clip"):
            raise ValueError(f"{path}: {s.get('name')!r} has no per_clip rows (write it with a newer --json)")
        scores[float(s["kbps_nominal"])] = s
    return scores


def paired(a: list[dict], b: list[dict], metric: str) -> tuple[float, float, int, int, float, float]:
    """``(mean diff, standard error, clips up, n, mean a, mean b)`` of ``a[i][metric] - b[i][metric]``
    over the clips both scored. ValueError when the lists differ in length (not the same clips)."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} clips against {len(b)}: not scorings of the same clips")
    pairs = [(x[metric], y[metric]) for x, y in zip(a, b)
             if x.get(metric) is not None and y.get(metric) is not None
             and math.isfinite(x[metric]) and math.isfinite(y[metric])]
    n = len(pairs)
    if n < 2:
        raise ValueError(f"fewer than 2 clips with a {metric} score in both")
    d = [x - y for x, y in pairs]
    mean = sum(d) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
    return (mean, std / math.sqrt(n), sum(v > 0 for v in d), n,
            sum(x for x, _ in pairs) / n, sum(y for _, y in pairs) / n)


def compare(a: dict[float, dict], b: dict[float, dict], pairs: list[tuple[float, float]],
            metrics: tuple[str, ...] = METRICS) -> list[Paired]:
    out = []
    for ka, kb in pairs:
        if ka not in a or kb not in b:
            raise ValueError(f"no {ka:g} kbps in A or no {kb:g} kbps in B")
        for m in metrics:
            diff, se, up, n, ma, mb = paired(a[ka]["per_clip"], b[kb]["per_clip"], m)
            out.append(Paired(ka, kb, m, ma, mb, diff, se, up, n))
    return out


def markdown(rows: list[Paired]) -> str:
    lines = ["| A kbps | B kbps | metric | A | B | A - B (paired) | clips up |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.kbps_a:g} | {r.kbps_b:g} | {r.metric} | {r.mean_a:.3f} | {r.mean_b:.3f} | "
                     f"{r.diff:+.3f} ± {r.stderr:.3f} | {r.up} of {r.n} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a", help="JSON of A (rotcodec eval --json or opus_compare.py --json)")
    p.add_argument("b", help="JSON of B, the same clips")
    p.add_argument("--pair", action="append", default=None, metavar="KA:KB",
                   help="compare A at KA kbps with B at KB kbps (default: every bitrate in both)")
    p.add_argument("--metric", action="append", default=None, choices=METRICS)
    p.add_argument("--folder", default=None, help="which folder of a scores file (default: its first)")
    args = p.parse_args(argv)
    try:
        a, b = load(args.a, args.folder), load(args.b, args.folder)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    if args.pair:
        try:
            pairs = [tuple(float(x) for x in text.split(":")) for text in args.pair]
        except ValueError:
            raise SystemExit(f"--pair takes KA:KB, e.g. 6:8, got {args.pair}") from None
        if any(len(pr) != 2 for pr in pairs):
            raise SystemExit(f"--pair takes KA:KB, e.g. 6:8, got {args.pair}")
    else:
        pairs = [(k, k) for k in sorted(set(a) & set(b))]
    try:
        print(markdown(compare(a, b, pairs, tuple(args.metric or METRICS))))
    except ValueError as err:
        raise SystemExit(str(err)) from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
