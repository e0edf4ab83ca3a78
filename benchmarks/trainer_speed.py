"""Training steps per second of the rounds' recipe, as ``rotcodec train`` runs it, in each way of
using this machine's cores: one process of 1 or 2 threads, or ``torchrun`` with 2 processes of one
thread each (DistributedDataParallel over gloo, half the batch each: the same 8 segments a step).

Each setting trains ``--steps`` steps from the bundled weights on the rounds' data (its loader and
augmentation included, checkpoints and validation pushed past the end) and its rate is read from
the run's log between the first and last logged steps (compiling, loading and the first steps
left out). ``--before COMMIT`` also runs the code and recipe of that commit (a git worktree under
OUT), one process, 1 and 2 threads: the baseline the issue's target is set against. Run it on an
otherwise quiet machine; rows are added to ``--json``.

    python benchmarks/trainer_speed.py --out runs/speed --before c655b03 --json docs/trainer_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path.home() / ".cache" / "rotcodec-corpus"
TRAIN = ("speech16k", "voices16k", "tuxpaint16k", "games16k")
RECIPE = "recipes/stft16k_rounds.toml"
# (label, processes, threads per process)
SETTINGS = (("1 process, 1 thread", 1, 1), ("1 process, 2 threads", 1, 2), ("2 processes (DDP), 1 thread each", 2, 1))


def train_command(code: Path, out: Path, steps: int, log_every: int, procs: int) -> list[str]:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
                if procs > 1 else [sys.executable])
    cmd = launcher + ["-m", "rotcodec", "train", str(code / RECIPE), "--out", str(out), "--quiet",
                      "--init", str(code / "rotcodec" / "pretrained" / "stft16k-cpu.pt")]
    cmd += [x for f in TRAIN for x in ("--data", str(CORPUS / f / "train"))]
    batch = 8 // procs
    sets = [f"train.steps={steps}", f"train.log_every={log_every}", f"train.checkpoint_every={10 * steps}",
            f"train.valid_every={10 * steps}", f"data.batch_size={batch}"]
    return cmd + [x for s in sets for x in ("--set", s)]


def cpu_facts() -> str:
    """The CPU's model name and whether it has the bf16 instructions oneDNN uses (Linux)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    have = [f for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    missing = [f for f in ("amx_bf16",) if f not in flags]
    return f"{os.cpu_count()} CPU cores, {name}; flags: {' '.join(have)}" + (f"; no {' '.join(missing)}" if missing else "")


def window_rate(log: Path) -> tuple[float, int]:
    """Steps per second between the first and the last logged training steps after step 1 (each row's
    ``steps_per_s`` is steps since the start over seconds since the start, so each row gives its time)."""
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("split") == "train" and r["step"] > 1]
    (s0, r0), (s1, r1) = (rows[0]["step"], rows[0]["steps_per_s"]), (rows[-1]["step"], rows[-1]["steps_per_s"])
    return (s1 - s0) / (s1 / r1 - s0 / r0), s1 - s0


def with_speedups(rows: list[dict]) -> list[dict]:
    """Each row of other code with ``speedup``: its steps/s over the baseline's on as many cores."""
    base = {r["processes"] * r["threads_per_process"]: r["steps_per_s"] for r in rows if r["code"].startswith("before")}
    for r in rows:
        cores = r["processes"] * r["threads_per_process"]
        if not r["code"].startswith("before") and cores in base:
            r["speedup"] = round(r["steps_per_s"] / base[cores], 2)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--before", default=None, help="commit of the baseline trainer (one process, 1 and 2 threads)")
    p.add_argument("--only", default=None, help="comma-separated setting numbers to run (1-3; default all)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs = [("after", ROOT, s) for i, s in enumerate(SETTINGS, 1) if not args.only or str(i) in args.only.split(",")]
    if args.before:
        code = out / "code_before"
        if not code.exists():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(code), args.before], check=True)
        runs = [(f"before ({args.before})", code, s) for s in SETTINGS[:2]] + runs
    rows = []
    for label, code, (setting, procs, threads) in runs:
        run_dir = out / f"{label.split()[0]}_{procs}x{threads}"
        shutil.rmtree(run_dir, ignore_errors=True)
        env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS=str(threads), ROTCODEC_THREADS=str(threads))
        cmd = train_command(code, run_dir, args.steps, args.log_every, procs)
        print("$", " ".join(cmd), flush=True)
        t0 = time.time()
        subprocess.run(cmd, env=env, cwd=str(code), check=True, stdout=subprocess.DEVNULL)
        rate, steps = window_rate(run_dir / "log.jsonl")
        row = {"code": label, "setting": setting, "processes": procs, "threads_per_process": threads,
               "batch_per_process": 8 // procs, "steps_timed": steps, "steps_per_s": round(rate, 3),
               "ms_per_step": round(1000 / rate, 1), "wall_s": round(time.time() - t0, 1)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.json:
        path = Path(args.json)
        doc = json.loads(path.read_text()) if path.exists() else {"about": __doc__.split("\n\n")[0].replace("\n", " ")}
        keep = [r for r in doc.get("rows", []) if not any(r["code"] == n["code"] and r["setting"] == n["setting"] for n in rows)]
        doc.update(machine=cpu_facts(),
                   command="python benchmarks/trainer_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                   rows=with_speedups(keep + rows))
        path.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
