"""What rounding costs under each quantizer design, from the default model by quantizer surgery.

Each arm starts from the same trained model (``--init``, default the shipped one), keeps its encoder
and decoder, carries the quantizer into the arm's settings (``rotcodec train --init`` with
``--set model.quantizer...``: :mod:`rotcodec.quantize.surgery`, the same codes at step 0) and is
fine-tuned for the same number of steps, every arm at once with one thread each (equal CPU time:
the same model, the same steps). Then every arm, and the starting model, is scored on the same clips
of each evaluation folder at 6 and 12 stages (3 and 6 kbps) three ways (:mod:`limits`):

    ceiling   every stage passes its projected residual on unrounded (no quantization error)
    greedy    rounded to codes, each stage its nearest code
    beamW     rounded, the encoder's beam search over code paths (what the codec ships)

with the rounding cost ``ceiling - beamW`` per clip, code usage and perplexity per stage (greedy codes,
12 stages, over the folder's clips), and each arm paired clip by clip against the first arm
(the control). Runs and scores are cached in OUT, so a stopped study picks up where it was.

    python benchmarks/quantizer_surgery.py --out runs/surgery --steps 5000 --json docs/quantizer_surgery.json \\
        --set optim.lr=1e-4 --set "data.weights={speech16k=0.45, voices16k=0.15, tuxpaint16k=0.2, games16k=0.2}" \\
        --arm control= --arm simvq=model.quantizer.codebook=simvq
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import os
import subprocess
import sys
from pathlib import Path

import torch

import rotcodec
from rotcodec.coding import conditioning
from rotcodec.coding.conditioning import GAIN_FRAMES
from rotcodec.evaluate import audio_files, score_clips
from rotcodec.io.audio import read_audio
from rotcodec.quantize.codebook_ops import code_histogram, perplexity

from limits import forward_fn  # benchmarks/limits.py
from paired import paired  # benchmarks/paired.py
from training_round import CORPUS, TRAIN_FOLDERS, UNSEEN, folder_key, read_log

ROOT = Path(__file__).resolve().parent.parent
STAGES = (6, 12)


def parse_arm(text: str) -> tuple[str, list[str]]:
    """``NAME=SET;SET`` -> ``(NAME, [SET, ...])`` (``NAME=`` is the control: the model's own settings)."""
    name, sep, sets = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--arm wants NAME=SET[;SET...], got {text!r}")
    return name.strip(), [s.strip() for s in sets.split(";") if s.strip()]


def finished(run: Path, steps: int) -> bool:
    return (run / "model.pt").exists() and any(r.get("step") == steps for r in read_log(run) if r.get("split") == "valid")


def train_arms(arms: dict[str, list[str]], args, out: Path) -> None:
    """Train every arm not yet finished, all at once, one thread each (``--resume`` a stopped one)."""
    procs = []
    for name, sets in arms.items():
        run = out / name
        if finished(run, args.steps):
            continue
        cmd = [sys.executable, "-m", "rotcodec", "train", args.recipe, "--out", str(run), "--quiet", "--name", name]
        cmd += [x for d in args.data for x in ("--data", d)]
        cmd += ["--resume"] if (run / "checkpoint.pt").exists() else ["--init", args.init]
        cmd += [x for s in [*args.sets, *sets, f"train.steps={args.steps}"] for x in ("--set", s)]
        run.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        print(f"training {name}: {' '.join(cmd[3:])}", flush=True)
        procs.append((name, subprocess.Popen(cmd, stdout=open(run / "train.out", "a"), stderr=subprocess.STDOUT, env=env)))
    for name, proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"training {name} failed; see {out / name / 'train.out'}")


def clips_of(folder: str, limit: int) -> list[tuple]:
    """Up to ``limit`` clips spread evenly over the folder (every k-th file)."""
    files = audio_files(folder)
    step = max(1, math.ceil(len(files) / limit))
    return [read_audio(f) for f in files[::step][:limit]]


@torch.inference_mode()
def usage(model, clips: list[tuple]) -> dict[str, list[float]]:
    """Per stage: the fraction of codes used and the perplexity of greedy codes over all the clips."""
    k = model.config.quantizer.codebook_size
    hists = torch.zeros(model.n_q, k)
    for wav, sr in clips:
        x = torch.from_numpy(wav).float()
        if sr != model.sample_rate:
            raise SystemExit(f"clips must be at {model.sample_rate} Hz")
        x, _ = conditioning.condition(x, GAIN_FRAMES * model.hop_length)  # as the codec's encoder sees it
        codes = model.quantizer.encode(model.encoder(model._pad(x[:, None])), model.n_q, 1)
        for i in range(model.n_q):
            hists[i] += code_histogram(codes[:, i], k)
    return {"usage": [float((h > 0).float().mean()) for h in hists], "perplexity": [float(perplexity(h)) for h in hists]}


def score_model(model_path: Path, folder: str, clips: list[tuple], beam: int, cache: Path) -> dict:
    """Ceiling, greedy and beam rows at each of :data:`STAGES`, with per-clip scores; cached."""
    if cache.exists() and cache.stat().st_mtime >= model_path.stat().st_mtime:
        saved = json.loads(cache.read_text())
        if saved.get("clips") == len(clips) and saved.get("beam") == beam:
            return saved
    model = rotcodec.load_model(model_path).eval()
    rows = {}
    for n_q in STAGES:
        for mode, rounded, width in (("ceiling", False, 1), ("greedy", True, 1), (f"beam{beam}", True, beam)):
            s = score_clips(f"{n_q} {mode}", model.bitrate(n_q) / 1000, clips, forward_fn(model, n_q, rounded, width))
            rows[f"{n_q}/{mode}"] = {"pesq": s.pesq, "stoi": s.stoi, "si_sdr": s.si_sdr, "mel": s.mel,
                                     "per_clip": [{m: c.get(m) for m in ("pesq", "stoi", "si_sdr")} for c in s.per_clip]}
            print(f"  {model_path.parent.name} {folder_key(folder)} {n_q} stages {mode}: PESQ {s.pesq:.3f}", flush=True)
    result = {"folder": folder_key(folder), "clips": len(clips), "beam": beam, "rows": rows, **usage(model, clips)}
    cache.write_text(json.dumps(result))
    return result


def cost_rows(rows: dict, n_q: int, beam: int) -> list[dict]:
    """Per clip: rounding cost (ceiling - beam) as a ``pesq`` entry, so :func:`paired` can pair it."""
    ceil, coded = rows[f"{n_q}/ceiling"]["per_clip"], rows[f"{n_q}/beam{beam}"]["per_clip"]
    return [{"pesq": None if c["pesq"] is None or b["pesq"] is None else c["pesq"] - b["pesq"]} for c, b in zip(ceil, coded)]


def summarize(scores: dict[str, dict[str, dict]], control: str, beam: int) -> list[dict]:
    """One row per folder, model and stage count: the three scores, the cost, and against the control."""
    out = []
    for folder in next(iter(scores.values())):
        for name, by_folder in scores.items():
            r = by_folder[folder]
            for n_q in STAGES:
                rows = r["rows"]
                row = {"folder": folder, "model": name, "stages": n_q, "clips": r["clips"],
                       "ceiling": rows[f"{n_q}/ceiling"]["pesq"], "greedy": rows[f"{n_q}/greedy"]["pesq"],
                       f"beam{beam}": rows[f"{n_q}/beam{beam}"]["pesq"],
                       "cost": rows[f"{n_q}/ceiling"]["pesq"] - rows[f"{n_q}/beam{beam}"]["pesq"],
                       "usage_mean": sum(r["usage"]) / len(r["usage"]),
                       "perplexity_mean": sum(r["perplexity"]) / len(r["perplexity"])}
                if name != control:
                    c = scores[control][folder]["rows"]
                    for mode in ("ceiling", f"beam{beam}"):
                        d, se, *_ = paired(rows[f"{n_q}/{mode}"]["per_clip"], c[f"{n_q}/{mode}"]["per_clip"], "pesq")
                        row[f"{mode}_vs_{control}"], row[f"{mode}_vs_{control}_se"] = round(d, 4), round(se, 4)
                    d, se, *_ = paired(cost_rows(rows, n_q, beam), cost_rows(c, n_q, beam), "pesq")
                    row[f"cost_vs_{control}"], row[f"cost_vs_{control}_se"] = round(d, 4), round(se, 4)
                out.append({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--init", default="stft16k-cpu", help="model every arm starts from (default: the shipped default)")
    p.add_argument("--recipe", default=str(ROOT / "recipes" / "stft16k_rounds.toml"))
    p.add_argument("--arm", action="append", type=parse_arm, default=None, metavar="NAME=SET[;SET]",
                   help="an arm and its --set overrides; the first is the control (default: control=, simvq=...)")
    p.add_argument("--set", action="append", default=[], dest="sets", help="overrides for every arm")
    p.add_argument("--steps", type=int, default=5000, help="fine-tuning steps per arm")
    p.add_argument("--data", action="append", default=None, help="training folders (default: the corpus train splits)")
    p.add_argument("--valid", action="append", default=None,
                   help="evaluation folders (default: speech16k/valid and the unseen folders)")
    p.add_argument("--limit", type=int, default=100, help="clips per evaluation folder, spread over it")
    p.add_argument("--beam", type=int, default=4, help="the encoder's beam for the rounded rows")
    p.add_argument("--out", required=True, help="study folder (one run folder per arm, score caches)")
    p.add_argument("--json", default=None, help="write the summary here")
    args = p.parse_args(argv)
    args.data = args.data or [str(CORPUS / f / "train") for f in TRAIN_FOLDERS]
    valid = args.valid or [str(CORPUS / "speech16k" / "valid"), *(str(CORPUS / u) for u in UNSEEN)]
    arms = dict(args.arm or [("control", []), ("simvq", ["model.quantizer.codebook=simvq"])])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_arms(arms, args, out)

    init_file = out / "init.pt"
    if not init_file.exists():
        rotcodec.load_model(args.init).save(init_file)
    models = {"init": init_file, **{name: out / name / "model.pt" for name in arms}}
    scores: dict[str, dict[str, dict]] = {name: {} for name in models}
    for folder in valid:
        clips = clips_of(folder, args.limit)
        for name, path in models.items():
            cache = out / f"scores_{name}_{folder_key(folder).replace('/', '_')}.json"
            scores[name][folder_key(folder)] = score_model(path, folder, clips, args.beam, cache)
    control = next(iter(arms))
    summary = summarize(scores, control, args.beam)
    cols = ["folder", "model", "stages", "ceiling", "greedy", f"beam{args.beam}", "cost", "usage_mean", "perplexity_mean",
            f"cost_vs_{control}", f"beam{args.beam}_vs_{control}"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for row in summary:
        print("| " + " | ".join(str(row.get(c, "")) for c in cols) + " |")
    if args.json:
        report = {"command": shlex.join(["python", "benchmarks/quantizer_surgery.py", *(argv if argv is not None else sys.argv[1:])]),
                  "init": args.init, "steps": args.steps, "arms": arms, "sets": args.sets, "beam": args.beam,
                  "summary": summary,
                  "per_stage": {name: {f: {"usage": s["usage"], "perplexity": s["perplexity"]} for f, s in by.items()}
                                for name, by in scores.items()}}
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
