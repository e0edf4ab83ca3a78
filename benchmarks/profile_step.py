"""Where a training step's time goes: the rounds' recipe, phase by phase, on this CPU.

Builds the run exactly as ``rotcodec train`` does (the recipe, ``--init`` weights, the data loader
with its worker), then times steps phase by phase with ``time.perf_counter``: waiting for the
batch, encoder, quantizer, decoder and each loss forward, backward, gradient clipping and the
optimizer step. The same step is also run under ``torch.profiler`` for the operators taking most
self time. It also times preparing one batch (reading, augmenting, conditioning) in this
process, which the loader's worker does on a core of its own.

    python benchmarks/profile_step.py --threads 2 --json docs/step_profile.json
    python benchmarks/profile_step.py --threads 1 --json docs/step_profile.json   # adds its rows
    git worktree add /tmp/before c655b03 && cp benchmarks/profile_step.py /tmp/before/benchmarks/
    cd /tmp/before && PYTHONPATH=. python benchmarks/profile_step.py --label before --json .../docs/step_profile.json

Phase timers need the CPU to finish each phase before the next starts, which it does (no async
execution on the CPU). Run on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shlex
import statistics
import time
from pathlib import Path

import torch

from rotcodec.model.codec import Codec
from rotcodec.train.config import load_recipe
from rotcodec.train.loop import _batches, _datasets, _init_codec
from rotcodec.train.steps import autocast_for, build_parts

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path.home() / ".cache" / "rotcodec-corpus"
FOLDERS = ("speech16k", "voices16k", "tuxpaint16k", "games16k")
# The step as the code it runs with computes it: this script also times the code before the
# speed-ups (a worktree of that commit first on PYTHONPATH), whose step differs as noted below.
NEW = "metrics" in inspect.signature(Codec.forward).parameters


class Phases:
    """Wall time per named phase, summed over the steps it is given."""

    def __init__(self):
        self.t = {}
        self.last = time.perf_counter()

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.t[name] = self.t.get(name, 0.0) + now - self.last
        self.last = now


def timed_step(parts, recipe, real, amp, ph: Phases, metrics: bool) -> None:
    """One generator step as ``steps.generator_step`` computes it, with a mark after each phase
    (``metrics``: the quantizer's diagnostics, which the loop asks for on logged steps only)."""
    codec = parts.codec
    with amp:
        length = real.shape[-1]
        z = codec.encoder(codec._pad(real))
        ph.mark("encoder fwd")
        if NEW:
            with torch.autocast(device_type="cpu", enabled=False):
                res = codec.quantizer(z.float(), None, metrics)
        else:  # the code before the speed-ups: every step computed the metrics
            res = codec.quantizer(z)
        ph.mark("quantizer fwd")
        fake = codec.decoder(res.quantized)[..., :length]
        ph.mark("decoder fwd")
        losses = {"mel": parts.mel(fake, real)}
        ph.mark("mel loss fwd")
        losses["stft"] = parts.stft(fake, real)
        ph.mark("stft loss fwd")
        from rotcodec.train.losses import negative_si_sdr, waveform_l1
        losses["wave"] = waveform_l1(fake.float(), real.float())
        losses["sisdr"] = negative_si_sdr(fake, real)
        losses.update(res.losses)
        total = sum(recipe.loss.weight(k) * v.float() for k, v in losses.items() if recipe.loss.weight(k) > 0)
        ph.mark("other losses fwd")
    parts.opt_g.zero_grad(set_to_none=True)
    total.backward()
    ph.mark("backward")
    torch.nn.utils.clip_grad_norm_(parts.codec.parameters(), recipe.optim.grad_clip, foreach=True if NEW else None)
    ph.mark("grad clip")
    parts.opt_g.step()
    parts.sched_g.step()
    ph.mark("optimizer")
    {k: float(v.detach()) for k, v in losses.items()}
    {k: float(v) for k, v in res.metrics.items()}
    ph.mark("logs (.item)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "stft16k_rounds.toml"))
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--init", default="stft16k-cpu", help="model to start from (a bundled name or a file)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30, help="timed steps (after --warmup)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--label", default="", help="what this run measures (a row key in --json)")
    ap.add_argument("--json", help="add this run's row to a JSON file (rows keyed by label and threads)")
    ap.add_argument("--no-profiler", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    from rotcodec.api import load_model

    recipe = load_recipe(args.recipe, args.sets)
    codec = _init_codec(load_model(args.init), recipe)
    data = [str(CORPUS / f / "train") for f in FOLDERS if (CORPUS / f).exists()]
    dataset, _ = _datasets(recipe, data, None)
    torch.manual_seed(recipe.train.seed)
    parts = build_parts(recipe, torch.device("cpu"), codec)
    amp = autocast_for(recipe, torch.device("cpu"))
    batches = _batches(dataset, recipe, 0, 0, 1, torch.device("cpu"))
    parts.model.train()

    # One batch prepared in this process (what the worker spends per step).
    t = time.perf_counter()
    n_items = 4 * recipe.data.batch_size
    for i in range(n_items):
        dataset[10_000 + i]
    batch_ms = (time.perf_counter() - t) / n_items * recipe.data.batch_size * 1000

    per_step, ph = [], Phases()
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            ph = Phases()
        start = time.perf_counter()
        ph.last = start
        real = next(batches)
        ph.mark("wait for batch")
        timed_step(parts, recipe, real, amp, ph, metrics=i % recipe.train.log_every == 0)
        if i >= args.warmup:
            per_step.append(time.perf_counter() - start)

    ops = []
    if not args.no_profiler:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                timed_step(parts, recipe, next(batches), amp, Phases(), metrics=False)
        total_self = sum(e.self_cpu_time_total for e in prof.key_averages())
        for e in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:25]:
            ops.append({"op": e.key, "self_ms_per_step": round(e.self_cpu_time_total / 3 / 1000, 2),
                        "share": round(e.self_cpu_time_total / total_self, 4), "calls_per_step": e.count // 3})

    mean = statistics.mean(per_step)
    row = {
        "label": args.label or "baseline", "threads": args.threads, "torch": torch.__version__,
        "recipe": os.path.relpath(args.recipe, ROOT), "sets": args.sets, "batch": recipe.data.batch_size,
        "segment_s": recipe.data.segment_seconds, "steps": args.steps,
        "ms_per_step": round(mean * 1000, 1), "ms_per_step_sd": round(statistics.stdev(per_step) * 1000, 1),
        "steps_per_s": round(1 / mean, 3),
        "phases_ms": {k: round(v / args.steps * 1000, 1) for k, v in ph.t.items()},
        "batch_prep_ms_one_core": round(batch_ms, 1),
        "top_ops": ops,
        "command": "python benchmarks/profile_step.py " + shlex.join(
            ["--threads", str(args.threads), "--steps", str(args.steps)] + [x for s in args.sets for x in ("--set", s)]
            + (["--label", args.label] if args.label else [])),
    }
    print(json.dumps({k: v for k, v in row.items() if k != "top_ops"}, indent=1))
    for o in ops[:15]:
        print(f"  {o['self_ms_per_step']:8.1f} ms {o['share']:6.1%} {o['calls_per_step']:6d}x {o['op']}")
    if args.json:
        path = Path(args.json)
        rows = json.loads(path.read_text())["rows"] if path.exists() else []
        rows = [r for r in rows if (r["label"], r["threads"]) != (row["label"], row["threads"])] + [row]
        path.write_text(json.dumps({"about": __doc__.split("\n\n")[0], "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
