"""Rotation trick against straight-through at the default model's scale: the scoring of the runs.

The runs are trained by the ablation runner, which resumes where it was stopped (one run per arm and
seed, the `stft16k` model of the default's recipe, from scratch, the same data and steps):

    rotcodec ablate recipes/stft16k_rounds.toml --data .../speech16k/train --data .../voices16k/train \\
        --data .../tuxpaint16k/train --data .../games16k/train --valid .../speech16k/valid \\
        --out runs/estimators --arms rotation:ema,ste:ema --seeds 2 --jobs 2 --set train.steps=10000

This script scores every finished run through the codec's own path (`rotcodec eval`'s
:func:`~rotcodec.evaluate.evaluate_clips`: conditioned, greedy coding, 1.5 / 3 / 6 kbps) on the same
clips of each folder, with the per-stage quantizer statistics (code usage, perplexity, qerr/||e||^2,
lambda = ||q||/||e||, obtuse fraction), and pairs each estimator with straight-through of the same
codebook care and seed clip by clip (same seed = same initial weights and batches). Scores are
cached per run and folder, so it can be rerun as more seeds finish.

    python benchmarks/estimators.py --out runs/estimators --json docs/estimators.json
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
from pathlib import Path

from rotcodec.evaluate import evaluate_clips
from rotcodec.model.loading import load_model_file, weights_hash
from rotcodec.train.ablate import finished, parse_arms, plan

from paired import paired  # benchmarks/paired.py
from quantizer_surgery import clips_of  # benchmarks/quantizer_surgery.py
from training_round import CORPUS, UNSEEN, folder_key

KBPS = (1.5, 3.0, 6.0)
TRAINED_BY = ("rotcodec ablate recipes/stft16k_rounds.toml " + " ".join(f"--data ~/.cache/rotcodec-corpus/{f}/train" for f in
              ("speech16k", "voices16k", "tuxpaint16k", "games16k"))
              + " --valid ~/.cache/rotcodec-corpus/speech16k/valid --out runs/estimators --arms rotation:ema,ste:ema"
              " --seeds 2 --jobs 2 --set train.steps=10000")
METRICS = ("pesq", "stoi", "si_sdr", "mel")
STAGE_STATS = ("usage", "perplexity", "qerr_rel", "lam", "obtuse")


def score_run(model_path: Path, folder: str, clips: list[tuple], cache: Path) -> list[dict]:
    """`evaluate_clips` rows (one per bitrate, with per-clip scores and per-stage statistics), cached
    under the model's hash and the number of clips."""
    model = load_model_file(model_path)
    key = {"model": weights_hash(model), "clips": len(clips), "folder": folder_key(folder)}
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return saved["scores"]
    scores = [s.as_dict() for s in evaluate_clips(model, clips, list(KBPS))]
    cache.write_text(json.dumps({"key": key, "scores": scores}))
    return scores


def seed_summary(values: list[float]) -> tuple[float, float]:
    """Mean over seeds and its standard error (nan with one seed)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan)


def finite(x):
    """``x`` with every nan or infinity replaced by None (strict JSON)."""
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [finite(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="the ablation folder (rotcodec ablate --out)")
    p.add_argument("--arms", default="rotation:ema,ste:ema")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--steps", type=int, default=10000, help="the runs' train.steps (only finished runs are scored)")
    p.add_argument("--valid", action="append", default=None,
                   help="evaluation folders (default: speech16k/valid, voices16k/valid, the unseen folders)")
    p.add_argument("--limit", type=int, default=100, help="clips per folder, spread over it")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    valid = args.valid or [str(CORPUS / "speech16k" / "valid"), str(CORPUS / "voices16k" / "valid"),
                           *(str(CORPUS / u) for u in UNSEEN)]
    runs = [r for r in plan(parse_arms(args.arms), args.seeds, Path(args.out)) if finished(r, args.steps)]
    if not runs:
        raise SystemExit(f"no finished run of {args.steps} steps under {args.out}")
    scores: dict[tuple[str, int], dict[str, list[dict]]] = {}
    for folder in valid:
        clips = clips_of(folder, args.limit)
        for r in runs:
            cache = r.folder / f"scores_{folder_key(folder).replace('/', '_')}.json"
            scores.setdefault((r.arm, r.seed), {})[folder_key(folder)] = score_run(r.folder / "model.pt", folder, clips, cache)
            print(f"scored {r.arm} seed {r.seed} on {folder_key(folder)}", flush=True)

    arms = list(dict.fromkeys(r.arm for r in runs))
    table = []  # per arm, folder, kbps: seed means of the metrics
    for arm in arms:
        seeds = sorted(s for (a, s) in scores if a == arm)
        for folder in scores[(arm, seeds[0])]:
            for i, kbps in enumerate(KBPS):
                row = {"arm": arm, "folder": folder, "kbps": kbps, "seeds": len(seeds)}
                for m in METRICS:
                    row[m], row[m + "_se_seeds"] = seed_summary([scores[(arm, s)][folder][i][m] for s in seeds])
                for st in STAGE_STATS:  # per stage, mean over seeds
                    row[st] = [statistics.fmean(col) for col in zip(*(scores[(arm, s)][folder][i][st] for s in seeds))]
                table.append(row)

    versus = []  # each estimator minus ste with the same care, seed by seed, paired over clips
    for arm in arms:
        est, _, care = arm.partition(":")
        base = f"ste:{care}"
        seeds = sorted(s for (a, s) in scores if a == arm and (base, s) in scores)
        if est == "ste" or not seeds:
            continue
        for folder in scores[(arm, seeds[0])]:
            for i, kbps in enumerate(KBPS):
                row = {"arm": arm, "versus": base, "folder": folder, "kbps": kbps, "seeds": seeds}
                for m in ("pesq", "stoi", "si_sdr"):
                    per_seed = [paired(scores[(arm, s)][folder][i]["per_clip"], scores[(base, s)][folder][i]["per_clip"], m)
                                for s in seeds]
                    diffs = [d for d, *_ in per_seed]
                    row[m] = statistics.fmean(diffs)
                    row[m + "_by_seed"] = [round(d, 4) for d in diffs]
                    row[m + "_se_clips"] = math.sqrt(sum(se ** 2 for _, se, *_ in per_seed)) / len(per_seed)
                    row[m + "_se_seeds"] = seed_summary(diffs)[1]
                versus.append(row)

    print("| arm | folder | kbps | PESQ-WB | STOI | SI-SDR | mel | usage % | qerr/‖e‖² | λ | obtuse |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['arm']} | {r['folder']} | {r['kbps']:g} | {r['pesq']:.3f} | {r['stoi']:.3f} | {r['si_sdr']:.2f} | "
              f"{r['mel']:.3f} | {statistics.fmean(r['usage']):.1f} | {statistics.fmean(r['qerr_rel']):.3f} | "
              f"{statistics.fmean(r['lam']):.3f} | {statistics.fmean(r['obtuse']):.4f} |")
    print("\n| arm - ste | folder | kbps | PESQ-WB by seed | mean | s.e. clips | s.e. seeds |\n|---|---|---|---|---|---|---|")
    for r in versus:
        print(f"| {r['arm']} | {r['folder']} | {r['kbps']:g} | {r['pesq_by_seed']} | {r['pesq']:+.3f} | "
              f"{r['pesq_se_clips']:.3f} | {r['pesq_se_seeds']:.3f} |")
    if args.json:
        report = {"command": shlex.join(["python", "benchmarks/estimators.py", *(argv if argv is not None else sys.argv[1:])]),
                  "trained_by": TRAINED_BY, "steps": args.steps, "runs": [f"{r.arm} seed {r.seed}" for r in runs],
                  "clips": {f: len(v[0]["per_clip"]) for f, v in next(iter(scores.values())).items()},
                  "table": table, "versus": versus}
        Path(args.json).write_text(json.dumps(finite(report), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
