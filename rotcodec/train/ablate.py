"""The rotation-vs-straight-through ablation: the same recipe, data, steps and seeds, trained once per
arm, then evaluated on the same validation clips.

An arm is ``ESTIMATOR:CARE``:
    ESTIMATOR  ``ste``, ``rotation`` or ``rotation_noscale`` (the rotation without lambda = ||q||/||e||)
    CARE       how the codebook is kept alive, since the estimator gives it no gradient:
               ``none``  learned codebook (codebook loss), no dead-code reset
               ``reset`` learned codebook + dead-code reset
               ``ema``   EMA codebook + dead-code reset (rotcodec's default)
Each run is one ``rotcodec train`` process (``--set`` overrides only), in ``OUT/ARM/seedN``, so a
run can be inspected, resumed or rerun alone; an interrupted ablation picks up where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rotcodec.text import counted

__all__ = ["CARE", "DEFAULT_ARMS", "Run", "parse_arms", "plan", "finished", "summarize", "markdown_summary", "paired",
           "markdown_paired", "ablate"]

CARE = {
    "none": {"model.quantizer.codebook": "loss", "model.quantizer.dead_code_threshold": "0"},
    "reset": {"model.quantizer.codebook": "loss", "model.quantizer.dead_code_threshold": "0.05"},
    "ema": {"model.quantizer.codebook": "ema", "model.quantizer.dead_code_threshold": "0.05"},
    "simvq": {"model.quantizer.codebook": "simvq", "model.quantizer.dead_code_threshold": "0.05"},
}
ESTIMATORS = ("ste", "rotation", "rotation_noscale")
DEFAULT_ARMS = ("ste:none", "rotation:none", "ste:reset", "rotation:reset", "ste:ema", "rotation:ema",
                "rotation_noscale:ema")


@dataclass(frozen=True)
class Run:
    arm: str
    seed: int
    folder: Path
    sets: tuple[str, ...]


def parse_arms(text: str | None) -> list[str]:
    """``"ste:ema,rotation:ema"`` -> validated arm names (``None`` or ``"all"``: :data:`DEFAULT_ARMS`)."""
    if text is None or text.strip() == "all":
        return list(DEFAULT_ARMS)
    arms = [a.strip() for a in text.split(",") if a.strip()]
    for arm in arms:
        est, _, care = arm.partition(":")
        if est not in ESTIMATORS or care not in CARE:
            raise ValueError(f"bad arm {arm!r}: expected ESTIMATOR:CARE with ESTIMATOR in {ESTIMATORS} "
                             f"and CARE in {tuple(CARE)}")
    if not arms or len(set(arms)) != len(arms):
        raise ValueError(f"--arms must name distinct arms, got {text!r}")
    return arms


def plan(arms: list[str], seeds: int, out: Path) -> list[Run]:
    """Every (arm, seed) run with its folder and the ``--set`` overrides that define it."""
    runs = []
    for seed in range(seeds):
        for arm in arms:
            est, _, care = arm.partition(":")
            sets = (f"model.quantizer.estimator={est}", *(f"{k}={v}" for k, v in CARE[care].items()),
                    f"train.seed={seed}")
            runs.append(Run(arm, seed, out / arm.replace(":", "_") / f"seed{seed}", sets))
    return runs


def finished(run: Run, steps: int) -> bool:
    return (run.folder / "model.pt").exists() and any(
        row.get("split") == "valid" and row.get("step") == steps for row in _read_log(run.folder))


def _read_log(folder: Path) -> list[dict]:
    path = folder / "log.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill
            pass
    return rows


def _train(run: Run, recipe: str, data: list[str], valid: list[str], extra: list[str], threads: int) -> None:
    cmd = [sys.executable, "-m", "rotcodec", "train", recipe, "--out", str(run.folder), "--quiet"]
    for d in data:
        cmd += ["--data", d]
    for v in valid:
        cmd += ["--valid", v]
    for s in (*extra, *run.sets):
        cmd += ["--set", s]
    if (run.folder / "checkpoint.pt").exists():
        cmd.append("--resume")
    run.folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with open(run.folder / "train.out", "a") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"training {run.arm} seed {run.seed} failed (exit {proc.returncode}); see {run.folder}/train.out")


def evaluate_run(run: Run, valid_set, n_q_mid: int) -> dict[str, float]:
    """Validation metrics of a finished run's model at all stages and at ``n_q_mid`` stages.

    Cached in ``RUN/eval.json`` with the model's hash and the clips' names, so a rerun of the same
    ablation (e.g. to redraw its report) does not evaluate again."""
    from rotcodec.model.loading import load_model_file, weights_hash
    from rotcodec.train.validate import validate

    codec = load_model_file(run.folder / "model.pt").eval()
    key = {"model": weights_hash(codec), "clips": valid_set.names, "n_q_mid": n_q_mid}
    cache = run.folder / "eval.json"
    if cache.exists():
        try:
            saved = json.loads(cache.read_text())
            if saved.get("key") == key:
                return saved["metrics"]
        except (json.JSONDecodeError, AttributeError):
            pass
    top = validate(codec, valid_set)
    mid = validate(codec, valid_set, n_q_mid)
    result = {k: v for k, v in top.items() if not k.startswith("lambda/")}
    result.update({"mel_mid": mid["mel"], "pesq_mid": mid.get("pesq", math.nan), "si_sdr_mid": mid["si_sdr"]})
    cache.write_text(json.dumps({"key": key, "metrics": result}))
    return result


def _stages(row: dict, prefix: str) -> list[float]:
    return [row[f"{prefix}/{i}"] for i in range(len([k for k in row if k.startswith(prefix + "/")]))]


def summarize(results: list[dict]) -> list[dict]:
    """Per arm, mean and sample std over seeds. ``results`` rows carry ``arm``, ``seed`` and the
    metrics of :func:`evaluate_run`; per-stage metrics are averaged over stages before the
    std (and kept per stage, as seed means, in ``usage_stages`` / ``qerr_rel_stages``)."""
    arms: dict[str, list[dict]] = {}
    for row in results:
        arms.setdefault(row["arm"], []).append(row)
    summary = []
    for arm, rows in arms.items():
        est, _, care = arm.partition(":")
        per_seed = {
            "mel": [r["mel"] for r in rows],
            "pesq": [r.get("pesq", math.nan) for r in rows],
            "pesq_mid": [r.get("pesq_mid", math.nan) for r in rows],
            "si_sdr": [r["si_sdr"] for r in rows],
            "usage": [100 * statistics.fmean(_stages(r, "usage")) for r in rows],
            "perplexity": [statistics.fmean(_stages(r, "perplexity")) for r in rows],
            "qerr": [statistics.fmean(_stages(r, "qerr")) for r in rows],
            "qerr_rel": [statistics.fmean(_stages(r, "qerr_rel")) for r in rows],
        }
        entry = {"arm": arm, "estimator": est, "care": care, "seeds": len(rows)}
        for name, values in per_seed.items():
            entry[name] = statistics.fmean(values)
            entry[name + "_std"] = statistics.stdev(values) if len(values) > 1 else math.nan
        for prefix in ("usage", "qerr_rel"):
            stages = [_stages(r, prefix) for r in rows]
            entry[prefix + "_stages"] = [statistics.fmean(col) for col in zip(*stages)]
        summary.append(entry)
    return summary


PAIRED = (("mel", "val mel", ".3f"), ("pesq", "PESQ-WB", ".3f"), ("usage", "codes used %", ".1f"),
          ("qerr_rel", "qerr / ‖e‖²", ".3f"))


def _seed_values(row: dict) -> dict[str, float]:
    return {"mel": row["mel"], "pesq": row.get("pesq", math.nan),
            "usage": 100 * statistics.fmean(_stages(row, "usage")), "qerr_rel": statistics.fmean(_stages(row, "qerr_rel"))}


def paired(results: list[dict]) -> list[dict]:
    """Each non-``ste`` arm minus the ``ste`` arm with the same codebook care, seed by seed (same
    seed = same initial weights and batches, so the pairs share most of their noise): per metric,
    the per-seed differences, their mean and their sample std."""
    by_key = {(r["arm"], r["seed"]): r for r in results}
    out = []
    for arm in dict.fromkeys(r["arm"] for r in results):
        est, _, care = arm.partition(":")
        base = f"ste:{care}"
        seeds = sorted(s for (a, s) in by_key if a == arm and (base, s) in by_key)
        if est == "ste" or not seeds:
            continue
        entry = {"arm": arm, "versus": base, "seeds": len(seeds)}
        for name, _, _ in PAIRED:
            diffs = [_seed_values(by_key[(arm, s)])[name] - _seed_values(by_key[(base, s)])[name] for s in seeds]
            entry[name] = {"diffs": diffs, "mean": statistics.fmean(diffs),
                           "std": statistics.stdev(diffs) if len(diffs) > 1 else math.nan}
        out.append(entry)
    return out


def markdown_paired(rows: list[dict]) -> str:
    """Paired differences as a markdown table: mean ± std [per seed]."""
    head = "| arm − straight-through (same care) | seeds | " + " | ".join(f"Δ {label}" for _, label, _ in PAIRED) + " |"
    lines = [head, "|" + "---|" * (len(PAIRED) + 2)]
    for e in rows:
        cells = []
        for name, _, fmt in PAIRED:
            d = e[name]
            std = "" if math.isnan(d["std"]) else " ± " + format(d["std"], fmt)
            cells.append(format(d["mean"], "+" + fmt) + std + " [" + ", ".join(format(x, "+" + fmt) for x in d["diffs"]) + "]")
        lines.append(f"| {e['arm']} − {e['versus']} | {e['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pm(entry: dict, name: str, fmt: str) -> str:
    mean, std = entry[name], entry[name + "_std"]
    if math.isnan(mean):
        return "n/a"
    return format(mean, fmt) + ("" if math.isnan(std) else " ± " + format(std, fmt))


def markdown_summary(summary: list[dict], mid_stages: int, top_stages: int) -> str:
    """One row per arm: mean ± std over seeds."""
    head = (f"| estimator | codebook care | seeds | val mel ↓ | PESQ-WB {counted(top_stages, 'stage')} ↑ | "
            f"PESQ-WB {counted(mid_stages, 'stage')} ↑ | SI-SDR dB ↑ | codes used % (per stage) | perplexity | "
            f"qerr ‖e−q‖² | qerr / ‖e‖² (per stage) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for e in summary:
        usage = "/".join(f"{100 * u:.0f}" for u in e["usage_stages"])
        qrel = "/".join(f"{q:.3f}" for q in e["qerr_rel_stages"])
        lines.append(f"| {e['estimator']} | {e['care']} | {e['seeds']} | {_pm(e, 'mel', '.3f')} | "
                     f"{_pm(e, 'pesq', '.3f')} | {_pm(e, 'pesq_mid', '.3f')} | {_pm(e, 'si_sdr', '.1f')} | "
                     f"{_pm(e, 'usage', '.1f')} ({usage}) | {_pm(e, 'perplexity', '.0f')} | "
                     f"{_pm(e, 'qerr', '.2e')} | {_pm(e, 'qerr_rel', '.3f')} ({qrel}) |")
    return "\n".join(lines)


def curves(runs: list[Run]) -> dict:
    """``{metric: {arm: [[(step, value), ...] per seed]}}`` from the runs' logs, for the PNG."""
    out: dict[str, dict[str, list]] = {"train mel": {}, "valid mel": {}, "train qerr/||e||² (stage 1)": {}}
    for run in runs:
        rows = _read_log(run.folder)
        train = [r for r in rows if r.get("split") == "train"]
        valid = [r for r in rows if r.get("split") == "valid"]
        out["train mel"].setdefault(run.arm, []).append(_smooth([(r["step"], r["mel"]) for r in train]))
        out["valid mel"].setdefault(run.arm, []).append([(r["step"], r["mel"]) for r in valid])
        out["train qerr/||e||² (stage 1)"].setdefault(run.arm, []).append(
            _smooth([(r["step"], r["vq/qerr_rel/0"]) for r in train if "vq/qerr_rel/0" in r]))
    return out


def _smooth(points: list[tuple[int, float]], width: int = 8) -> list[tuple[int, float]]:
    """Trailing moving average (training losses are noisy at batch 8)."""
    values = [v for _, v in points]
    return [(s, statistics.fmean(values[max(0, i - width + 1):i + 1])) for i, (s, _) in enumerate(points)]


def ablate(recipe: str, data: list[str], valid: list[str], out: str | Path, seeds: int = 3,
           arms: list[str] | None = None, jobs: int = 2, sets: list[str] | None = None,
           valid_clips: int = 48, plot: bool = True, log=print) -> dict:
    """Train every arm x seed (``jobs`` processes at a time, threads split between them), evaluate
    each on ``valid`` and write ``OUT/results.json``, ``OUT/summary.md`` and ``OUT/curves.png``."""
    from rotcodec.train.config import load_recipe
    from rotcodec.train.data import ValidSet, scan_audio

    out = Path(out)
    arms = list(arms or DEFAULT_ARMS)
    sets = list(sets or [])
    base = load_recipe(recipe, sets)  # fails early on a bad recipe or --set
    for folder in (*data, *valid):
        if not Path(folder).exists():
            raise FileNotFoundError(f"no such data folder: {folder}")
    runs = plan(arms, seeds, out)
    todo = [r for r in runs if not finished(r, base.train.steps)]
    log(f"ablation: {len(arms)} arms x {seeds} seeds = {len(runs)} runs of {base.train.steps} steps "
        f"({len(runs) - len(todo)} already done), {jobs} at a time")
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(_train, r, recipe, data, valid, sets, threads) for r in todo]
        for f, r in zip(futures, todo):
            f.result()
            log(f"  trained {r.arm} seed {r.seed}")

    valid_set = ValidSet(scan_audio(valid), base.model.sample_rate, base.data.valid_seconds, valid_clips,
                         base.data.valid_loudness_db)
    if not len(valid_set):
        raise ValueError(f"no readable validation audio under {valid}")
    top = base.model.quantizer.n_q
    mid = max(1, top // 2)
    results = []
    for r in runs:
        metrics = evaluate_run(r, valid_set, mid)
        results.append({"arm": r.arm, "seed": r.seed, **metrics})
        log(f"  evaluated {r.arm} seed {r.seed}: mel {metrics['mel']:.3f}")
    summary = summarize(results)
    pairs = paired(results)
    table = markdown_summary(summary, mid, top)
    if pairs:
        table += ("\n\nPaired by seed (each arm minus straight-through with the same codebook care and seed):\n\n"
                  + markdown_paired(pairs))
    report = {"recipe": str(recipe), "sets": sets, "steps": base.train.steps, "seeds": seeds, "arms": arms,
              "valid_clips": len(valid_set), "valid_seconds": base.data.valid_seconds, "top_stages": top,
              "mid_stages": mid, "results": results, "summary": summary, "paired": pairs, "table": table}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=1))
    (out / "summary.md").write_text(table + "\n")
    if plot:
        from rotcodec.plots import training_curves

        training_curves(curves(runs), out / "curves.png", title=f"{Path(recipe).stem}: {seeds} seeds per arm")
    return report
