"""One training round of the default model: train, evaluate, ship only if unheard voices improved.

A round continues the shipped default (``--init``, fresh optimizers: the optimizer state is too
large to keep in the repo; the learning rate restarts where the shipped run stood before its
cool-down, ``lr_stable`` in its scores file, unless ``--set optim.lr=...``) or a run still on this
machine (``--resume``, exact), for a wall-time budget, with ``recipes/stft16k_rounds.toml`` (every
corpus speech folder, balanced, augmented) unless ``--recipe``. Then it evaluates the half-precision
export with `rotcodec eval` at 1.5, 3 and 6 kbps on the corpus valid splits and the two folders of
voices no training folder holds (``unseen16k``, ``unseenx16k``), and scores the shipped weights on
the same clips with the same code (the encode path may have changed since they shipped). The new
weights replace the shipped file only when (:func:`improved`) PESQ-WB at 3 and at 6 kbps on the
unseen folders together rose beyond paired noise (mean of new - shipped over the clips > 2 standard
errors) and no folder fell beyond it at any bitrate (mean > -2 standard errors); with ``--ship``
that is done, and the round's row goes into the training log, ``docs/training_log.csv``, either way
(in place of the same round's earlier row, a partial sitting's).

With ``--cooldown M`` the learning rate falls linearly to 0 over the round's last M minutes
(warmup-stable-decay): the cooled weights are what the round evaluates and may ship; the run as
it was before the cool-down (``checkpoint_stable.pt``) is evaluated too, for the comparison, and
is what the next round on the same machine continues (``--continue-from``).

    python benchmarks/training_round.py --round 12 --out runs/round12 --minutes 120 --cooldown 20 --ship
    python benchmarks/training_round.py --round 13 --out runs/round13 --continue-from runs/round12 --minutes 120 --cooldown 20 --ship

``--init-run RUN`` starts the same way (fresh optimizers) from another run's weights, an unshipped
round's say, to change what a continuation cannot (the learning rate: a resumed run keeps its
schedule):

    python benchmarks/training_round.py --round 10 --out runs/round10 --init-run runs/round9 --set optim.lr=2e-4 --minutes 120 --cooldown 20 --ship

Everything it decides is printed and written to OUT/round.json. The hours of audio the weights have
seen (the log's column) count from OUT/history.json, written when the round begins (the hours at its
first step): a later sitting of the round reads it, and a round continuing this run counts from it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import rotcodec
from rotcodec.train.checkpoint import read_checkpoint
from rotcodec.train.config import load_recipe

from paired import paired  # benchmarks/paired.py

ROOT = Path(__file__).resolve().parent.parent
PRETRAINED = ROOT / "rotcodec" / "pretrained"
CORPUS = Path.home() / ".cache" / "rotcodec-corpus"
KBPS = (1.5, 3.0, 6.0)
TRAIN_FOLDERS = ("speech16k", "voices16k", "tuxpaint16k", "games16k")
UNSEEN = ("unseen16k", "unseenx16k")  # never trained on: the score for voices the model has not heard


def default_valid() -> list[str]:
    """The evaluation folders: each training folder's valid split, then the unseen folders."""
    return ([str(CORPUS / f / "valid") for f in TRAIN_FOLDERS] + [str(CORPUS / f) for f in UNSEEN])


def folder_key(folder: str) -> str:
    """``speech16k/valid`` for a valid split, ``unseen16k`` for a folder of its own."""
    p = Path(folder)
    return f"{p.parent.name}/{p.name}" if p.name in ("valid", "train") else p.name


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]


def written_after(target: Path, source: Path) -> bool:
    """Whether ``target`` (an eval JSON, a half-precision copy) was written after ``source`` (the
    model it was made from) last changed: only then is it still ``source``'s. A resumed round
    rewrites its model, and must not reuse what was made from the weights it had before."""
    return target.exists() and target.stat().st_mtime >= source.stat().st_mtime


def evaluate(model: Path, valid: list[str], out: Path, tag: str = "") -> dict[str, list[dict]]:
    scores = {}
    for folder in valid:
        key = folder_key(folder)
        target = out / f"eval{tag}_{key.replace('/', '_')}.json"
        if not written_after(target, model):  # an older file here is this script's own, of older weights
            run([sys.executable, "-m", "rotcodec", "eval", "--model", str(model), "--data", folder,
                 "--kbps", ",".join(f"{k:g}" for k in KBPS), "--json", str(target)]
                + (["--force"] if target.exists() else []))
        scores[key] = json.loads(target.read_text())
    return scores


def pesq_by_kbps(scores: list[dict]) -> dict[float, float]:  # noqa: D103
    return {float(s["kbps_nominal"]): float(s["pesq"]) for s in scores}


def paired_diff(new: list[dict], old: list[dict]) -> tuple[float, float, int]:
    """``(mean, standard error, n)`` of new - old PESQ over the clips both scored (rows in the same
    order; :func:`paired.paired`). Fewer than 2 clips scored: an infinite standard error, so that
    nothing passes or fails on them."""
    if len(new) != len(old):
        raise ValueError(f"{len(new)} clips against {len(old)}: not scorings of the same clips")
    try:
        mean, se, _up, n, _a, _b = paired(new, old, "pesq")
    except ValueError:
        return 0.0, math.inf, 0
    return mean, se, n


def _clips(scores: list[dict], kbps: float) -> list[dict]:
    return next(s for s in scores if float(s["kbps_nominal"]) == kbps)["per_clip"]


def improved(new: dict[str, list[dict]], old: dict[str, list[dict]] | None,
             unseen: tuple[str, ...] = UNSEEN) -> tuple[bool, str]:
    """The shipping rule. ``new`` and ``old`` map folders to `rotcodec eval --json` scores of the
    same clips. Ships when PESQ-WB at 3 and 6 kbps on the ``unseen`` folders together rose by more
    than 2 paired standard errors, and no folder at any bitrate fell by more than 2."""
    if old is None:
        return True, "no shipped scores to beat"
    keys = [k for k in unseen if k in new and k in old]
    if not keys:
        return False, f"no unseen folder ({', '.join(unseen)}) scored: nothing to ship on"
    ok, why = True, []
    for kbps in (3.0, 6.0):
        d, se, n = paired_diff([c for k in keys for c in _clips(new[k], kbps)],
                               [c for k in keys for c in _clips(old[k], kbps)])
        ok &= d > 2 * se
        why.append(f"unseen {kbps:g} kbps {d:+.3f} ± {se:.3f} ({n} clips)")
    for key in new:
        if key not in old:
            continue
        for kbps in KBPS:
            d, se, _ = paired_diff(_clips(new[key], kbps), _clips(old[key], kbps))
            if d < -2 * se:
                ok = False
                why.append(f"{key} {kbps:g} kbps fell {d:+.3f} ± {se:.3f}")
    return ok, "; ".join(why)


def continue_from(run: Path, out: Path) -> int:
    """Seed ``out`` with ``run``'s checkpoint from before its cool-down (``checkpoint_stable.pt``; its
    last ``checkpoint.pt`` when it had none) and the log rows up to that step, to ``--resume`` it.
    Returns the checkpoint's step."""
    if (out / "checkpoint.pt").exists():
        raise SystemExit(f"{out / 'checkpoint.pt'} exists; --continue-from needs a new --out")
    stable = run / "checkpoint_stable.pt"
    source = stable if stable.exists() else run / "checkpoint.pt"
    if not source.exists():
        raise SystemExit(f"--continue-from {run}: no checkpoint there")
    rows = read_log(run)
    cool = [r["step"] for r in rows if r.get("split") == "cooldown"]
    keep = [r for r in rows if r["step"] <= cool[-1]] if stable.exists() and cool else rows
    out.mkdir(parents=True, exist_ok=True)
    (out / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in keep if r.get("split") != "cooldown"))
    shutil.copyfile(source, out / "checkpoint.pt")
    step = int(read_checkpoint(out / "checkpoint.pt")["step"])
    print(f"continuing {source} (step {step})", flush=True)
    return step


def hours_at(step: int, per_step: float, point: dict | None) -> float:
    """Hours of audio a run's weights have seen at ``step``, from one known ``point`` of the same run
    (``{"step", "hours_seen_total"}``): every step between them saw ``per_step`` hours, forward or
    back (a round continued from before a cool-down stands before the cooled steps). No point: 0."""
    if point is None:
        return 0.0
    return float(point["hours_seen_total"]) + (step - int(point["step"])) * per_step


def history_point(run: Path) -> dict | None:
    """A known point of ``run``'s history: its ``history.json`` (written when a round begins it), else
    its ``round.json`` (what an older round decided) at the step it was decided at; None if neither."""
    if (run / "history.json").exists():
        return json.loads((run / "history.json").read_text())
    if (run / "round.json").exists():
        row = json.loads((run / "round.json").read_text())
        step = row["last_step"] if "last_step" in row else max(r["step"] for r in read_log(run))
        return {"step": step, "hours_seen_total": row["hours_seen_total"]}
    return None


def lr_before_cooldown(rows: list[dict]) -> float | None:
    """The learning rate the run stood at when its cool-down began (its last logged one when it had
    none): where a fresh machine's round, which restarts AdamW from the shipped weights, resumes the
    schedule instead of the recipe's peak."""
    cool = [r["step"] for r in rows if r.get("split") == "cooldown"]
    lrs = [r for r in rows if "lr" in r and r.get("split") == "train" and (not cool or r["step"] <= cool[-1])]
    return float(lrs[-1]["lr"]) if lrs else None


LOG = ROOT / "docs" / "training_log.csv"
LOG_COLUMNS = ("round", "hardware", "steps", "batch", "segment_s", "hours_seen", "wall_minutes",
               *(f"{m}_{k:g}" for k in KBPS for m in ("pesq", "stoi", "si_sdr")), "shipped")


def log_row(row: dict) -> dict[str, str]:
    """A round's row of the training log (``docs/training_log.csv``): PESQ-WB, STOI and SI-SDR at
    each bitrate on the first evaluation folder (``row["scores"]``), hours seen, shipped or not."""
    s = {float(x["kbps_nominal"]): x for x in row["scores"]}
    out = {"round": str(row["round"]), "hardware": row["hardware"], "steps": str(row["steps"]),
           "batch": str(row["batch"]), "segment_s": f"{row['segment']:g}",
           "hours_seen": f"{row['hours_seen_total']:.1f}", "wall_minutes": f"{row['wall_minutes']:.0f}"}
    for k in KBPS:
        out.update({f"pesq_{k:g}": f"{s[k]['pesq']:.3f}", f"stoi_{k:g}": f"{s[k]['stoi']:.3f}",
                    f"si_sdr_{k:g}": f"{s[k]['si_sdr']:.2f}"})
    out["shipped"] = "yes" if row["shipped"] else "no"
    return out


def add_to_log(text: str, entry: dict[str, str]) -> str:
    """The training log's CSV ``text`` with ``entry`` in place of the same round's earlier row (a
    partial round finished later), else appended at the end. Empty ``text`` starts a new log."""
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    columns = reader.fieldnames or list(LOG_COLUMNS)
    if set(entry) != set(columns):
        raise ValueError(f"the log's columns {columns} are not the row's {list(entry)}")
    same = [i for i, r in enumerate(rows) if r["round"] == entry["round"]]
    if same:
        rows[same[-1]] = entry
    else:
        rows.append(entry)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--round", type=int, required=True, help="round number (for the training log)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--name", default=(PRETRAINED / "default.txt").read_text().split()[0],
                   help="bundled model to continue and replace (default: the default model)")
    p.add_argument("--recipe", default=str(ROOT / "recipes" / "stft16k_rounds.toml"))
    p.add_argument("--data", action="append", default=None,
                   help="training folders (default: the corpus " + ", ".join(f"{f}/train" for f in TRAIN_FOLDERS) + ")")
    p.add_argument("--valid", action="append", default=None,
                   help="evaluation folders (default: each training folder's valid split, then "
                        + " and ".join(UNSEEN) + "; the rule ships on the unseen ones)")
    p.add_argument("--minutes", type=float, default=120.0, help="wall-clock training budget (default 120)")
    p.add_argument("--resume", action="store_true",
                   help="continue OUT/checkpoint.pt (a run begun in this round) instead of the shipped file")
    p.add_argument("--continue-from", default=None, metavar="RUN",
                   help="continue an earlier round's run still on this machine (its optimizer too): copies its "
                        "checkpoint from before the cool-down into OUT and resumes it")
    p.add_argument("--init-run", default=None, metavar="RUN",
                   help="start from another run's weights (RUN/model.pt, e.g. an unshipped round's) instead of the "
                        "shipped file, with fresh optimizers; its hours seen count from RUN's history")
    p.add_argument("--cooldown", type=float, default=0.0,
                   help="minutes at the end of the budget over which the learning rate falls to 0 (default 0: none)")
    p.add_argument("--start-step", type=int, default=None,
                   help="steps the run had before this round (default: what OUT's log holds when resuming)")
    p.add_argument("--skip-train", action="store_true", help="only evaluate and decide (training already done)")
    p.add_argument("--wall-minutes", type=float, default=None,
                   help="the round's wall time for the log when training ran outside this script")
    p.add_argument("--hardware", default="2 CPU cores", help="for the training log row")
    p.add_argument("--set", action="append", default=[], dest="sets", help="recipe overrides for this round")
    p.add_argument("--ship", action="store_true", help="replace the shipped file when the rule says so")
    args = p.parse_args(argv)
    data = args.data or [str(CORPUS / f / "train") for f in TRAIN_FOLDERS]
    valid = args.valid or default_valid()
    out = Path(args.out)
    shipped = PRETRAINED / f"{args.name}.pt"
    scores_file = PRETRAINED / f"{args.name}.scores.json"
    previous = json.loads(scores_file.read_text()) if scores_file.exists() else None

    recipe = load_recipe(args.recipe, list(args.sets))
    per_step = recipe.data.batch_size * recipe.data.segment_seconds / 3600
    start_step = args.start_step
    point = history_point(out) if (out / "history.json").exists() else None  # a sitting of this round, resumed
    if args.continue_from and not args.skip_train:
        start_step = continue_from(Path(args.continue_from), out)
        point = history_point(Path(args.continue_from))
        args.resume = True
    init, init_rows = shipped, None
    if args.init_run and not (args.resume or args.skip_train):
        run_dir = Path(args.init_run)
        init, source_point = run_dir / "model.pt", history_point(run_dir)
        if not init.exists() or source_point is None:
            raise SystemExit(f"--init-run {run_dir}: needs its model.pt and a history.json or round.json")
        init_rows = read_log(run_dir)
        last = max(r["step"] for r in init_rows)  # model.pt is written with every checkpoint
        point = {"step": 0, "hours_seen_total": hours_at(last, per_step, source_point)}
    t0 = time.time()
    # With --resume the run folder already holds earlier steps (a copy of the last round's run, say):
    # the row counts only the steps trained by this call. --start-step overrides (--skip-train).
    if start_step is None:
        start_step = max(r["step"] for r in read_log(out)) if args.resume and not args.skip_train else 0
    if point is None and previous:
        # The shipped model's history: --init starts a new run at step 0 from it; a --resume without a
        # record of its own is taken to continue the shipped model's run (where its step counts from).
        point = {"step": previous["step"] if start_step else 0, "hours_seen_total": previous["hours_seen_total"]}
    hours_before = hours_at(start_step, per_step, point)
    if not (out / "history.json").exists() and not args.skip_train:  # what a later sitting or round counts from
        out.mkdir(parents=True, exist_ok=True)
        (out / "history.json").write_text(json.dumps({"step": start_step, "hours_seen_total": hours_before}) + "\n")
    sets = list(args.sets)
    fresh = not (args.resume or args.skip_train)  # --init from the shipped (or --init-run's) weights, AdamW restarted
    if fresh and not any(s.startswith("optim.lr=") for s in sets):
        # Pick the schedule up where the run of those weights stood.
        lr = lr_before_cooldown(init_rows) if init_rows is not None else (previous or {}).get("lr_stable")
        if lr:
            sets.append(f"optim.lr={lr:.3g}")
    if not args.skip_train:
        cmd = [sys.executable, "-m", "rotcodec", "train", args.recipe, "--out", str(out), "--quiet", "--name", args.name]
        cmd += [x for d in data for x in ("--data", d)]
        cmd += ["--resume"] if args.resume else ["--init", str(init)]
        limits = [f"train.max_minutes={args.minutes}", 'train.clock="wall"', f"train.cooldown_minutes={args.cooldown}"]
        cmd += [x for s in sets + limits for x in ("--set", s)]
        run(cmd)
    wall = (time.time() - t0) / 60 if args.wall_minutes is None else args.wall_minutes
    log = read_log(out)
    last_step = max(r["step"] for r in log)
    steps = last_step - start_step  # --init starts at step 0; --resume counts from where this call found the run

    half = out / "model_half.pt"
    new_model = rotcodec.load_model(out / "model.pt")
    if not written_after(half, out / "model.pt"):
        new_model.save(half, half=True)
    scores = evaluate(half, valid, out)
    main_key = next(iter(scores))
    stable_scores = None
    if (out / "model_stable.pt").exists():  # the same run before its cool-down: what the cool-down bought
        stable_half = out / "model_stable_half.pt"
        if not written_after(stable_half, out / "model_stable.pt"):
            rotcodec.load_model(out / "model_stable.pt").save(stable_half, half=True)
        stable_scores = evaluate(stable_half, valid, out, tag="_stable")
        before, after = pesq_by_kbps(stable_scores[main_key]), pesq_by_kbps(scores[main_key])
        print("before the cool-down -> after:", ", ".join(f"{k:g} kbps {before[k]:.3f} -> {after[k]:.3f}" for k in KBPS),
              flush=True)
    beam = new_model.config.quantizer.beam
    # The shipped weights on the same clips, through the same encode path and beam: the rule
    # compares weights, not code versions or searches.
    baseline = out / "shipped_half.pt"
    if previous and not written_after(baseline, shipped):
        rotcodec.load_model(shipped).set_beam(beam).save(baseline, half=True)
    old_scores = evaluate(baseline, valid, out, tag="_shipped") if previous else None
    ok, why = improved(scores, old_scores)
    batch, segment = recipe.data.batch_size, recipe.data.segment_seconds
    row = {"round": args.round, "hardware": args.hardware, "steps": steps, "batch": batch, "segment": segment,
           "start_step": start_step, "last_step": last_step,
           "hours_seen_total": hours_before + steps * per_step, "wall_minutes": wall,
           "scores": scores[main_key], "all_scores": scores, "stable_scores": stable_scores,
           "cooldown_minutes": args.cooldown, "sets": sets, "shipped": bool(ok and args.ship), "rule": why}
    (out / "round.json").write_text(json.dumps(row, indent=2) + "\n")
    print(f"round {args.round}: {steps} steps in {wall:.0f} min; {why}; "
          f"{'improved' if ok else 'not improved'}{', shipped' if row['shipped'] else ''}")
    if args.ship:
        if ok:
            shutil.copyfile(half, shipped)
            scores_file.write_text(json.dumps({"round": args.round, "step": last_step,
                                               "hours_seen_total": row["hours_seen_total"],
                                               "lr_stable": lr_before_cooldown(log), "beam": beam,
                                               "scores": scores}, indent=2) + "\n")
        LOG.write_text(add_to_log(LOG.read_text() if LOG.exists() else "", log_row(row)))
    print(",".join(log_row(row).values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
