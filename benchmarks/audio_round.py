"""One training round of the general-audio model (``audio24k-cpu``): train, score, ship when better.

The speech model's rounds (``training_round.py``) ship on PESQ-WB of unheard voices; music and
effects have no PESQ, so these ship on the mel distance of ``rotcodec eval`` (lower is better),
clip-paired, at every bitrate the model offers (1.5, 3, 6, 12 kbps):

* the score folders: ``unseensongs24k`` (another composer's music: never trained on),
  ``effects24k/valid`` and ``songs24k/valid``;
* the rule (:func:`improved`): mel distance on ``unseensongs24k`` and ``effects24k/valid`` together
  falls by more than 2 paired standard errors at every bitrate, and ``songs24k/valid`` rises by
  no more than 2 at any. Before a general model is bundled, the reference is what a user got
  until now, the bundled speech model at its top bitrate (6 kbps) on the same clips, and the new
  model must beat it at 6 kbps.

A first round starts from the speech model's weights (``--warm-start``: the same trunk and input
shape); a later one continues the bundled general model (``--init``) or a run on this machine
(``--resume``). ``--ship`` copies the half-precision export to ``rotcodec/pretrained/`` with its
scores, and the round's row goes into ``docs/training_log_audio24k.csv`` either way.

    python benchmarks/audio_round.py --round 1 --out runs/audio1 --minutes 75 --cooldown 10 --ship
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import rotcodec

from paired import paired  # benchmarks/paired.py
from training_round import written_after  # an evaluation is of the weights it was made after

ROOT = Path(__file__).resolve().parent.parent
PRETRAINED = ROOT / "rotcodec" / "pretrained"
CORPUS = Path.home() / ".cache" / "rotcodec-corpus"
NAME = "audio24k-cpu"
RECIPE = ROOT / "recipes" / "stft24k_rounds.toml"
KBPS = (1.5, 3.0, 6.0, 12.0)
TRAIN = ("songs24k", "effects24k", "music24k", "speech16k", "games16k")
SHIP_ON = ("unseensongs24k", "effects24k/valid")
KEEP = ("songs24k/valid",)
LOG = ROOT / "docs" / "training_log_audio24k.csv"


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def evaluate(model: str, out: Path, tag: str, kbps: tuple[float, ...] = KBPS) -> dict[str, list[dict]]:
    """``rotcodec eval --json`` of ``model`` on every score folder (cached in ``out`` while newer than
    the model file)."""
    scores = {}
    for folder in SHIP_ON + KEEP:
        target = out / f"eval_{tag}_{folder.replace('/', '_')}.json"
        source = Path(model)  # a model file (a bundled name is not one: its evaluations are kept)
        if not target.exists() or (source.is_file() and not written_after(target, source)):
            run([sys.executable, "-m", "rotcodec", "eval", "--model", model, "--data", str(CORPUS / folder),
                 "--kbps", ",".join(f"{k:g}" for k in kbps), "--json", str(target), "-q"]
                + (["--force"] if target.exists() else []))
        scores[folder] = json.loads(target.read_text())
    return scores


def _clips(scores: list[dict], kbps: float) -> list[dict]:
    return next(s for s in scores if float(s["kbps_nominal"]) == kbps)["per_clip"]


def mel_change(new: list[dict], old: list[dict]) -> tuple[float, float, int]:
    """``(mean, standard error, n)`` of new - old mel distance over the same clips."""
    mean, se, _up, n, _a, _b = paired(new, old, "mel")
    return mean, se, n


def improved(new: dict[str, list[dict]], old: dict[str, list[dict]], pairs: list[tuple[float, float]],
             keep: bool = True) -> tuple[bool, str]:
    """The shipping rule over ``pairs`` of (new kbps, old kbps): mel distance on :data:`SHIP_ON`
    together falls beyond 2 paired s.e. at each pair, and (``keep``) :data:`KEEP` does not rise beyond 2."""
    ok, why = True, []
    for k_new, k_old in pairs:
        d, se, n = mel_change([c for f in SHIP_ON for c in _clips(new[f], k_new)],
                              [c for f in SHIP_ON for c in _clips(old[f], k_old)])
        ok &= d < -2 * se
        why.append(f"music+effects {k_new:g} vs {k_old:g} kbps mel {d:+.3f} ± {se:.3f} ({n} clips)")
        if keep:
            for f in KEEP:
                d, se, _ = mel_change(_clips(new[f], k_new), _clips(old[f], k_old))
                if d > 2 * se:
                    ok = False
                    why.append(f"{f} {k_new:g} kbps mel rose {d:+.3f} ± {se:.3f}")
    return ok, "; ".join(why)


def log_row(row: dict) -> dict[str, str]:
    out = {"round": str(row["round"]), "hardware": row["hardware"], "steps": str(row["steps"]),
           "wall_minutes": f"{row['wall_minutes']:.0f}"}
    for folder in SHIP_ON + KEEP:
        for s in row["scores"][folder]:
            out[f"mel_{folder.split('/')[0]}_{float(s['kbps_nominal']):g}"] = f"{s['mel']:.3f}"
    out["shipped"] = "yes" if row["shipped"] else "no"
    return out


def add_to_log(text: str, entry: dict[str, str]) -> str:
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["round"] != entry["round"]] + [entry]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(entry), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=75.0)
    p.add_argument("--cooldown", type=float, default=10.0)
    p.add_argument("--resume", action="store_true", help="continue OUT/checkpoint.pt")
    p.add_argument("--skip-train", action="store_true", help="only evaluate and decide")
    p.add_argument("--hardware", default="2 CPU cores (1 thread)")
    p.add_argument("--set", action="append", default=[], dest="sets")
    p.add_argument("--ship", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    shipped = PRETRAINED / f"{NAME}.pt"
    t0 = time.time()
    if not args.skip_train:
        cmd = [sys.executable, "-m", "rotcodec", "train", str(RECIPE), "--out", str(out), "--quiet", "--name", NAME]
        cmd += [x for f in TRAIN for x in ("--data", str(CORPUS / f / "train"))]
        if args.resume:
            cmd += ["--resume"]
        elif shipped.exists():
            cmd += ["--init", str(shipped)]
        else:
            cmd += ["--warm-start", (PRETRAINED / "default.txt").read_text().split()[0]]
        sets = args.sets + [f"train.max_minutes={args.minutes}", 'train.clock="wall"',
                            f"train.cooldown_minutes={args.cooldown}"]
        run(cmd + [x for s in sets for x in ("--set", s)])
    wall = (time.time() - t0) / 60
    half = out / "model_half.pt"
    rotcodec.load_model(out / "model.pt").save(half, half=True)
    scores = evaluate(str(half), out, "new")
    if shipped.exists():
        ok, why = improved(scores, evaluate(str(shipped), out, "shipped"), [(k, k) for k in KBPS])
    else:  # what users had: the speech model, at its top bitrate
        speech = evaluate((PRETRAINED / "default.txt").read_text().split()[0], out, "speech", (6.0,))
        ok, why = improved(scores, speech, [(6.0, 6.0)], keep=False)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
    row = {"round": args.round, "hardware": args.hardware, "steps": max(r["step"] for r in log),
           "wall_minutes": wall, "scores": scores, "shipped": bool(ok and args.ship), "rule": why}
    (out / "round.json").write_text(json.dumps(row, indent=1) + "\n")
    print(f"round {args.round}: {why}; {'improved' if ok else 'not improved'}{', shipped' if row['shipped'] else ''}")
    if args.ship:
        if ok:
            shutil.copyfile(half, shipped)
            (PRETRAINED / f"{NAME}.scores.json").write_text(json.dumps(
                {"round": args.round, "step": row["steps"], "scores": scores}, indent=1) + "\n")
        LOG.write_text(add_to_log(LOG.read_text() if LOG.exists() else "", log_row(row)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
