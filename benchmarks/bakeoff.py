"""Architecture bake-off: train each arm for the same CPU time, then `rotcodec eval` every model.

Arms (recipe + overrides), each a plain `rotcodec train` subprocess with one thread and a budget of
``--minutes`` of its own CPU time (``train.clock = "cpu"``, so arms that share cores are still
given equal compute; data loading runs in the same process, ``data.num_workers = 0``, so it is
counted too):

    seanet       recipes/speech16k_cpu.toml               (the first bundled model's recipe)
    seanet_stft  the same + loss.stft = 20                (compressed complex STFT loss)
    stft         recipes/stft16k_cpu.toml                 (the STFT-domain architecture)

Every finished model is evaluated with `rotcodec eval` at the given bitrates on each --valid
folder; the JSON scores are kept in OUT/ARM/eval_<folder>.json and the table is printed and
written to OUT/bakeoff.md. A rerun skips arms that finished training and evaluations already
written, so an interrupted bake-off continues.

    python benchmarks/bakeoff.py --data ~/.cache/rotcodec-corpus/speech16k/train \
        --data ~/.cache/rotcodec-corpus/voices16k/train \
        --valid ~/.cache/rotcodec-corpus/speech16k/valid --valid ~/.cache/rotcodec-corpus/voices16k/valid \
        --out runs/bakeoff --minutes 25 --jobs 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARMS = {
    "seanet": ("recipes/speech16k_cpu.toml", []),
    "seanet_stft": ("recipes/speech16k_cpu.toml", ["loss.stft=20.0"]),
    "stft": ("recipes/stft16k_cpu.toml", []),
}


def one_thread_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = "1"
    return env


def train_cmd(arm: str, data: list[str], run: Path, minutes: float) -> list[str]:
    recipe, sets = ARMS[arm]
    cmd = [sys.executable, "-m", "rotcodec", "train", str(ROOT / recipe), "--out", str(run), "--quiet"]
    for d in data:
        cmd += ["--data", d]
    for s in sets + [f"train.max_minutes={minutes}", 'train.clock="cpu"', "data.num_workers=0"]:
        cmd += ["--set", s]
    return cmd


def finished(run: Path) -> bool:
    """A run is finished when its trainer exited cleanly (``done``, written here) and left model.pt."""
    return (run / "model.pt").exists() and (run / "done").exists()


def train_all(arms: list[str], data: list[str], out: Path, minutes: float, jobs: int) -> None:
    pending = [a for a in arms if not finished(out / a)]
    running: list[tuple[str, subprocess.Popen]] = []
    while pending or running:
        while pending and len(running) < jobs:
            arm = pending.pop(0)
            run = out / arm
            cmd = train_cmd(arm, data, run, minutes)
            if (run / "checkpoint.pt").exists():
                cmd.append("--resume")
            run.mkdir(parents=True, exist_ok=True)
            print(f"[{arm}] {' '.join(cmd)}", flush=True)
            log = open(run / "train.out", "a")
            running.append((arm, subprocess.Popen(cmd, env=one_thread_env(), stdout=log, stderr=subprocess.STDOUT)))
        while all(proc.poll() is None for _, proc in running):
            time.sleep(2)
        arm, proc = next((a, pr) for a, pr in running if pr.poll() is not None)
        running.remove((arm, proc))
        if proc.returncode != 0:
            raise SystemExit(f"[{arm}] training failed (exit {proc.returncode}); see {out / arm / 'train.out'}")
        (out / arm / "done").touch()


def evaluate(arm: str, valid: str, out: Path, kbps: str) -> list[dict]:
    target = out / arm / f"eval_{Path(valid).parent.name}_{Path(valid).name}.json"
    if not target.exists():
        cmd = [sys.executable, "-m", "rotcodec", "eval", "--model", str(out / arm / "model.pt"), "--data", valid,
               "--kbps", kbps, "--json", str(target)]
        print(f"[{arm}] {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(target.read_text())


def steps_of(run: Path) -> int:
    steps = 0
    for line in (run / "log.jsonl").read_text().splitlines():
        row = json.loads(line)
        steps = max(steps, int(row.get("step", 0)))
    return steps


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(rows: list[tuple[str, str, int, list[dict]]]) -> str:
    lines = ["| arm | valid set | steps | kbps | PESQ-WB | STOI | SI-SDR (dB) | mel | codes used (mean over stages, %) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for arm, valid, steps, scores in rows:
        for s in scores:
            usage = s.get("usage") or []
            used = sum(usage) / len(usage) if usage else None
            lines.append(f"| {arm} | {valid} | {steps} | {s['kbps_nominal']:g} | {fmt(s['pesq'], '.2f')} | "
                         f"{fmt(s['stoi'], '.3f')} | {s['si_sdr']:.1f} | {s['mel']:.3f} | {fmt(used, '.1f')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", action="append", required=True)
    p.add_argument("--valid", action="append", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=25.0, help="CPU minutes of training per arm (default 25)")
    p.add_argument("--jobs", type=int, default=3, help="arms trained at once (default 3)")
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--kbps", default="1.5,3,6")
    args = p.parse_args(argv)
    arms = args.arms.split(",")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"unknown arm(s) {unknown}; choose from {list(ARMS)}")
    out = Path(args.out)
    train_all(arms, args.data, out, args.minutes, args.jobs)
    rows = []
    for arm in arms:
        for valid in args.valid:
            rows.append((arm, f"{Path(valid).parent.name}/{Path(valid).name}", steps_of(out / arm),
                         evaluate(arm, valid, out, args.kbps)))
    text = table(rows)
    (out / "bakeoff.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
