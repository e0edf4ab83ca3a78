"""Which lever pays for voices the model has not heard: data, balance, augmentation (an A/B).

Each arm fine-tunes the shipped default for the same wall time on the same machine (one after
another, one thread each), then is scored with `rotcodec eval` on the unseen folders and
``speech16k/valid``; the table pairs every arm with arm ``a`` clip by clip:

* ``a``: the rounds' data before round 12 (``speech16k`` + ``voices16k``, by duration), no augmentation;
* ``b``: every corpus speech folder with the rounds recipe's folder weights, no augmentation;
* ``c``: ``b`` with the rounds recipe's augmentation (``recipes/stft16k_rounds.toml`` as it is).

All arms condition their segments as the encoder does. Rerunning skips arms already trained and
scored (their ``OUT/ARM/eval_*.json``).

    OMP_NUM_THREADS=1 python benchmarks/levers.py --out runs/levers --minutes 18 --cooldown 3 --json docs/levers.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from paired import paired  # benchmarks/paired.py

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path.home() / ".cache" / "rotcodec-corpus"
RECIPE = ROOT / "recipes" / "stft16k_rounds.toml"
NO_AUG = [f"augment.{k}=0" for k in ("speed", "eq", "reverb", "band", "noise")]
ARMS = {
    "a": (["speech16k", "voices16k"], NO_AUG + ["data.weights={}"]),
    "b": (["speech16k", "voices16k", "tuxpaint16k", "games16k"], NO_AUG),
    "c": (["speech16k", "voices16k", "tuxpaint16k", "games16k"], []),
}
EVAL = ("unseen16k", "unseenx16k", "speech16k/valid")


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=18.0)
    p.add_argument("--cooldown", type=float, default=3.0)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--arms", default="a,b,c")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    out = Path(args.out)
    scores: dict[str, dict[str, list[dict]]] = {}
    for arm in args.arms.split(","):
        folders, sets = ARMS[arm]
        run_dir = out / arm
        if not (run_dir / "model.pt").exists():
            cmd = [sys.executable, "-m", "rotcodec", "train", str(RECIPE), "--out", str(run_dir), "--quiet",
                   "--name", "stft16k-cpu", "--init", "stft16k-cpu"]
            cmd += [x for f in folders for x in ("--data", str(CORPUS / f / "train"))]
            sets = sets + [f"optim.lr={args.lr}", f"train.max_minutes={args.minutes}",
                           f"train.cooldown_minutes={args.cooldown}", 'train.clock="wall"']
            run(cmd + [x for s in sets for x in ("--set", s)])
        scores[arm] = {}
        for folder in EVAL:
            target = run_dir / f"eval_{folder.replace('/', '_')}.json"
            if not target.exists():
                run([sys.executable, "-m", "rotcodec", "eval", "--model", str(run_dir / "model.pt"),
                     "--data", str(CORPUS / folder), "--kbps", "3,6", "--json", str(target), "-q"])
            scores[arm][folder] = json.loads(target.read_text())
    rows = []
    steps = {arm: max(json.loads(line)["step"] for line in (out / arm / "log.jsonl").read_text().splitlines() if line)
             for arm in scores}
    for arm, by_folder in scores.items():
        for folder, ss in by_folder.items():
            for s in ss:
                row = {"arm": arm, "steps": steps[arm], "folder": folder, "kbps": s["kbps_nominal"], "pesq": s["pesq"],
                       "si_sdr": s["si_sdr"], "clips": s["clips"]}
                if arm != "a" and "a" in scores:
                    ref = next(x for x in scores["a"][folder] if x["kbps_nominal"] == s["kbps_nominal"])
                    row["vs_a"] = list(paired(s["per_clip"], ref["per_clip"], "pesq")[:2])
                rows.append(row)
                print(row, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"minutes": args.minutes, "cooldown": args.cooldown, "lr": args.lr,
                                               "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
