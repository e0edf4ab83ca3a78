"""Quality per wall minute of the faster trainer against today's: an equal-wall-time pair.

Both arms fine-tune the shipped default model (``--init``, fresh optimizers, the learning rate the
shipped run stood at) on the rounds' data for the same wall time, at the same time, one thread
each, so that both see the same machine. Arm ``before`` runs the code and recipe of ``--before``
(a commit, checked out as a git worktree under OUT), arm ``after`` the code and recipe of this
checkout. Both are then scored by this checkout's ``rotcodec eval`` on the folders of voices no
training folder holds, and the table pairs ``after - before`` clip by clip (PESQ-WB).

    python benchmarks/trainer_ab.py --out runs/trainer_ab --minutes 22 --cooldown 4 --json docs/trainer_ab.json

Rerunning skips what is done (a trained arm has OUT/ARM/done, a scored one its eval JSON); an arm\ncut short is trained again from the start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from paired import paired  # benchmarks/paired.py

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path.home() / ".cache" / "rotcodec-corpus"
TRAIN = ("speech16k", "voices16k", "tuxpaint16k", "games16k")
EVAL = ("unseen16k", "unseenx16k")
RECIPE = "recipes/stft16k_rounds.toml"


def arm_command(code: Path, out: Path, minutes: float, cooldown: float, lr: float) -> list[str]:
    """``rotcodec train`` of the rounds' recipe as ``code`` has it, from the shipped default."""
    cmd = [sys.executable, "-m", "rotcodec", "train", str(code / RECIPE), "--out", str(out), "--quiet",
           "--name", "stft16k-cpu", "--init", str(code / "rotcodec" / "pretrained" / "stft16k-cpu.pt")]
    cmd += [x for f in TRAIN for x in ("--data", str(CORPUS / f / "train"))]
    sets = [f"optim.lr={lr:.3g}", f"train.max_minutes={minutes}", f"train.cooldown_minutes={cooldown}",
            'train.clock="wall"']
    return cmd + [x for s in sets for x in ("--set", s)]


def steps_per_s(run: Path) -> tuple[int, float]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in rows if r.get("split") == "train"]
    return max(r["step"] for r in rows), train[-1]["steps_per_s"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--before", default="c655b03", help="commit of today's trainer (default: before the speed-ups)")
    p.add_argument("--minutes", type=float, default=22.0)
    p.add_argument("--cooldown", type=float, default=4.0)
    p.add_argument("--kbps", default="1.5,3,6")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    before = out / "code_before"
    if not before.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.before], check=True)
    shipped = json.loads((ROOT / "rotcodec" / "pretrained" / "stft16k-cpu.scores.json").read_text())
    lr = shipped["lr_stable"]
    arms = {"before": before, "after": ROOT}
    procs = []
    for arm, code in arms.items():
        if (out / arm / "done").exists():
            continue
        shutil.rmtree(out / arm, ignore_errors=True)  # a partial arm would not have had its wall time
        env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS="1", ROTCODEC_THREADS="1")
        cmd = arm_command(code, out / arm, args.minutes, args.cooldown, lr)
        print("$", " ".join(cmd), flush=True)
        log = open(out / f"{arm}.out", "w")
        procs.append((arm, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(code))))
    for arm, proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"arm {arm} failed; see {out / (arm + '.out')}")
        (out / arm / "done").write_text("")
    scores: dict[str, dict[str, list[dict]]] = {}
    for arm in arms:
        scores[arm] = {}
        for folder in EVAL:
            target = out / arm / f"eval_{folder}.json"
            if not target.exists():
                cmd = [sys.executable, "-m", "rotcodec", "eval", "--model", str(out / arm / "model.pt"), "--data",
                       str(CORPUS / folder), "--kbps", args.kbps, "--json", str(target), "-q"]
                print("$", " ".join(cmd), flush=True)
                subprocess.run(cmd, check=True)
            scores[arm][folder] = json.loads(target.read_text())
    rows = []
    for folder in EVAL:
        for a, b in zip(scores["after"][folder], scores["before"][folder]):
            mean, se, _up, n, _x, _y = paired(a["per_clip"], b["per_clip"], "pesq")
            rows.append({"folder": folder, "kbps": a["kbps_nominal"], "pesq_before": b["pesq"], "pesq_after": a["pesq"],
                         "after_minus_before": round(mean, 4), "se": round(se, 4), "clips": n})
            print(rows[-1], flush=True)
    result = {"command": "python benchmarks/trainer_ab.py " + " ".join(argv or sys.argv[1:]),
              "before_commit": args.before, "minutes": args.minutes, "cooldown": args.cooldown, "lr": lr,
              "threads_each": 1, "arms": {arm: dict(zip(("steps", "steps_per_s"), steps_per_s(out / arm)))
                                          for arm in arms},
              "rows": rows}
    print(json.dumps(result["arms"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
