"""How close each quantizer stage comes to what a codebook of its size can do at all.

A stage codes its projected residual ``e`` (``d`` dimensions) with one of ``K`` codes. Its relative
error ``||e - q||^2 / ||e||^2`` (`rotcodec eval`'s qerr/||e||^2) is set against two references for a
source of the same energy:

    shannon   K^(-2/d): the rate-distortion bound of a Gaussian source (any source of that variance
              can be coded at least this well by an ideal, infinitely long code)
    kmeans    k-means with K codes on d-dimensional Gaussian samples (25 iterations, measured on
              other samples): what a codebook of this shape achieves on that source

and the bits each stage loses to the k-means reference, ``d/2 * log2(qerr_rel / kmeans)``, with
its usage and perplexity (greedy codes, all stages, conditioned input). A stage at its reference
leaves little for codebook design to win: the rest of the rounding cost is the bit budget.

    python benchmarks/stage_efficiency.py --data ~/.cache/rotcodec-corpus/speech16k/valid --json docs/stage_efficiency.json
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

import torch

import rotcodec
from rotcodec.evaluate import evaluate_clips
from rotcodec.quantize.codebook_ops import kmeans, nearest

from quantizer_surgery import clips_of  # benchmarks/quantizer_surgery.py


def kmeans_gaussian(k: int, d: int, n: int = 100_000, iters: int = 25, seed: int = 0) -> float:
    """Relative error of k-means with ``k`` codes on ``d``-dimensional standard Gaussian samples."""
    g = torch.Generator().manual_seed(seed)
    train, test = torch.randn(n, d, generator=g), torch.randn(n // 2, d, generator=g)
    torch.manual_seed(seed)  # kmeans draws its starting centres from the global generator
    centres, _ = kmeans(train, k, iters)
    q = centres[nearest(test, centres)]
    return float((test - q).pow(2).sum(-1).mean() / test.pow(2).sum(-1).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="bundled name or model file (default: the default model)")
    p.add_argument("--data", required=True, help="folder of clips")
    p.add_argument("--limit", type=int, default=200, help="clips, spread over the folder")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    model = rotcodec.load_model(args.model).eval()
    qc = model.config.quantizer
    score = evaluate_clips(model, clips_of(args.data, args.limit), [None])[0]
    shannon = qc.codebook_size ** (-2 / qc.code_dim)
    ref = kmeans_gaussian(qc.codebook_size, qc.code_dim)
    stages = []
    for i, rel in enumerate(score.qerr_rel):
        stages.append({"stage": i + 1, "usage_pct": round(score.usage[i], 2), "perplexity": round(score.perplexity[i], 1),
                       "qerr_rel": round(rel, 4), "bits_lost_vs_kmeans": round(qc.code_dim / 2 * math.log2(rel / ref), 3),
                       "lambda": round(score.lam[i], 4), "obtuse": round(score.obtuse[i], 5)})
    print(f"{model.config.name}, {score.clips} clips of {args.data}: K={qc.codebook_size}, d={qc.code_dim}; "
          f"Gaussian references: shannon {shannon:.3f}, k-means {ref:.3f}")
    print("| stage | usage % | perplexity | qerr/‖e‖² | bits lost vs k-means | λ | obtuse |\n|---|---|---|---|---|---|---|")
    for s in stages:
        print(f"| {s['stage']} | {s['usage_pct']:.1f} | {s['perplexity']:.0f} | {s['qerr_rel']:.3f} | "
              f"{s['bits_lost_vs_kmeans']:+.2f} | {s['lambda']:.3f} | {s['obtuse']:.4f} |")
    if args.json:
        report = {"command": shlex.join(["python", "benchmarks/stage_efficiency.py", *(argv if argv is not None else sys.argv[1:])]),
                  "model": model.config.name, "data": args.data, "clips": score.clips, "codebook_size": qc.codebook_size,
                  "code_dim": qc.code_dim, "shannon": round(shannon, 4), "kmeans_gaussian": round(ref, 4),
                  "pesq_all_stages": score.pesq, "stages": stages}
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
