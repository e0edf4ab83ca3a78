"""Capacity A/B: the model grown by identity blocks against the same-size model, at equal wall time.

Both arms are training rounds (``benchmarks/training_round.py``) started at the same moment from
the same weights (``--init-run``), one thread each on the same machine, for the same wall time;
the grown arm adds ``--set model.blocks=N`` (:mod:`rotcodec.model.growth`). This script reads what
the rounds wrote (their ``rotcodec eval --json`` files of the folders of voices no training
folder holds, their logs) and pairs the arms clip by clip (PESQ-WB, grown - same size); with
``--bench`` it also times encoding and decoding of both beside EnCodec 24 kHz in one
``rotcodec bench`` run each.

    python benchmarks/capacity_ab.py --same runs/round16 --grown runs/round16g --bench --json docs/capacity_ab.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import rotcodec

from paired import paired  # benchmarks/paired.py

UNSEEN = ("unseen16k", "unseenx16k")


def run_facts(run: Path) -> dict:
    """Steps, steps/s at the end, parameters and blocks of a round's run folder."""
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in rows if r.get("split") == "train"]
    model = rotcodec.load_model(run / "model.pt")
    codec = getattr(model, "codec", model)
    return {"steps": max(r["step"] for r in rows), "steps_per_s": round(train[-1]["steps_per_s"], 3),
            "blocks": codec.config.blocks, "parameters": sum(p.numel() for p in codec.parameters())}


def bench(model: Path, out: Path) -> dict:
    """``rotcodec bench`` of one model at batch 1 and EnCodec 24 kHz in the same run: their rows
    (x real time) and the round-trip speed ratio."""
    if not out.exists():
        subprocess.run([sys.executable, "-m", "rotcodec", "bench", "--model", str(model), "--batch", "1",
                        "--kbps", "3,6", "--json", str(out)], check=True)
    data = json.loads(out.read_text())
    return {"rotcodec": [r for r in data["model"] if r["batch"] == 1], "encodec": data["encodec"],
            "ratio": data["ratio"], "machine": data["machine"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--same", required=True, help="run folder of the same-size arm")
    p.add_argument("--grown", required=True, help="run folder of the grown arm")
    p.add_argument("--bench", action="store_true", help="also time encoding and decoding (rotcodec bench)")
    p.add_argument("--note", default="", help="how the machine was used while timing (for the JSON)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    arms = {"same": Path(args.same), "grown": Path(args.grown)}
    rows = []
    for folder in UNSEEN:
        same, grown = (json.loads((arms[a] / f"eval_{folder}.json").read_text()) for a in ("same", "grown"))
        shipped = json.loads((arms["same"] / f"eval_shipped_{folder}.json").read_text())
        for g, s, b in zip(grown, same, shipped):
            mean, se, up, n, _x, _y = paired(g["per_clip"], s["per_clip"], "pesq")
            rows.append({"folder": folder, "kbps": g["kbps_nominal"], "pesq_same": round(s["pesq"], 4),
                         "pesq_grown": round(g["pesq"], 4), "pesq_shipped": round(b["pesq"], 4),
                         "grown_minus_same": round(mean, 4), "se": round(se, 4), "clips_up": up, "clips": n})
            print(rows[-1], flush=True)
    result = {"about": __doc__.split("\n\n")[0].replace("\n", " "),
              "command": "python benchmarks/capacity_ab.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "arms": {a: run_facts(run) for a, run in arms.items()}, "rows": rows}
    for a, run in arms.items():
        rounds = run / "round.json"
        if rounds.exists():
            result["arms"][a]["wall_minutes"] = json.loads(rounds.read_text()).get("wall_minutes")
    if args.bench:
        result["speed_x_real_time"] = {a: bench(run / "model_half.pt", run / "bench.json") for a, run in arms.items()}
        result["speed_note"] = args.note
    print(json.dumps(result["arms"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
