"""Is the quantizer's rounding cost a search problem or a codebook-fit problem? Two probes.

`benchmarks/limits.py` measures what rounding to codewords costs (the codec against the same path
unrounded). This script asks whether a cheaper fix than more training or more bits closes part of
that gap, with the same decoder and the same token format:

- ``beam``: encode with a beam search over all stages (width ``--beam``) instead of the greedy
  stage-by-stage nearest code. Each stage's candidates are its 1024 decoded codewords
  (``out_proj(codeword)``, latent space); the search minimises the squared distance between the
  codes' sum and the unrounded path's output (``limits.continuous``, which lies in the span the
  stages can reach), over the whole sequence of stages. Greedy nearest-code lookup is in each
  stage's own code space, so a search can find codes that greedy never would. Next to it,
  ``code-space beam``: the codec's own search (``rotcodec.quantize.search``, ``quantizer.beam``),
  which keeps the paths of least summed code-space error, the quantity greedy lowers stage by stage.
- ``refit``: refit every stage's codebook by Lloyd iterations (k-means, ``--iters``) on the
  latents of training clips (``--train``, every ``--train-every``-th file), stage after stage,
  each stage on the residuals the refitted stages before it leave. The training codebooks are
  exponential moving averages over batches of 8 x 1 s from a model that kept changing; a
  full-batch fit on the final encoder lowers the code-space error. Starts from the current
  codebook; a code no vector picks keeps its codeword.

Both are scored like `rotcodec eval` (PESQ-WB, STOI, SI-SDR, mel distance) next to the codec as it
is ("greedy"), at each number of stages:

    python benchmarks/rounding.py --data ~/.cache/rotcodec-corpus/speech16k/valid --every 5 \\
        --train ~/.cache/rotcodec-corpus/speech16k/train ~/.cache/rotcodec-corpus/voices16k/train --train-every 10

A forward pass only; nothing is written but ``--json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchaudio

import rotcodec
from rotcodec.evaluate import audio_files, score_clips
from rotcodec.io.audio import read_audio
from rotcodec.quantize.codebook_ops import nearest

from limits import continuous  # the sibling script (its folder is on sys.path when run)


def decoded_codewords(layer) -> torch.Tensor:
    """Every codeword of one stage after its output projection, ``[K, D]`` (latent space)."""
    k = layer.config.codebook_size
    return layer.decode(torch.arange(k)[None]).squeeze(0).t()


def beam_codes(tables: list[torch.Tensor], target: torch.Tensor, width: int) -> torch.Tensor:
    """Codes ``[n, N]`` for ``target [N, D]`` whose summed ``tables[i][code]`` lie nearest to it
    (squared L2), by a beam search of ``width`` paths over the stages ``tables [K, D]``."""
    n_vec, dim = target.shape
    residual = target[:, None]                      # [N, w, D], w paths
    error = residual.pow(2).sum(-1)                 # [N, w]
    codes = target.new_zeros((n_vec, 1, 0), dtype=torch.long)
    for table in tables:
        k = table.shape[0]
        # ||r - t||^2 = ||r||^2 - 2 r.t + ||t||^2, for every path and code
        dist = error[..., None] - 2 * residual @ table.t() + table.pow(2).sum(-1)
        error, index = dist.flatten(1).topk(min(width, dist[0].numel()), dim=1, largest=False)
        path, code = index // k, index % k
        residual = residual.gather(1, path[..., None].expand(-1, -1, dim)) - table[code]
        codes = torch.cat([codes.gather(1, path[..., None].expand(-1, -1, codes.shape[2])), code[..., None]], 2)
    return codes[:, 0].t()


def lloyd(vectors: torch.Tensor, codebook: torch.Tensor, iters: int) -> torch.Tensor:
    """``iters`` k-means steps from ``codebook [K, d]`` on ``vectors [N, d]``; unused codes stay."""
    for _ in range(iters):
        codes = nearest(vectors, codebook)
        sums = torch.zeros_like(codebook).index_add_(0, codes, vectors)
        counts = torch.bincount(codes, minlength=codebook.shape[0]).float()
        codebook = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], codebook)
    return codebook


def relative_error(vectors: torch.Tensor, codebook: torch.Tensor) -> float:
    """Mean squared quantization error over mean squared norm (code space)."""
    q = codebook[nearest(vectors, codebook)]
    return float((vectors - q).pow(2).sum(-1).mean() / vectors.pow(2).sum(-1).mean().clamp_min(1e-12))


def latent_frames(model, wav: np.ndarray, sr: int) -> torch.Tensor:
    """The encoder's latent of a clip's channels, as frames ``[C * F, D]``."""
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    if sr != model.sample_rate:
        x = torchaudio.functional.resample(x, sr, model.sample_rate)
    latent = model.encoder(model._pad(x[:, None]))
    return latent.transpose(1, 2).reshape(-1, latent.shape[1])


@torch.inference_mode()
def refit(model, files: list[Path], iters: int) -> tuple[object, list[tuple[float, float]]]:
    """A copy of ``model`` with every stage's codebook refitted on ``files``' latents, and each
    stage's relative code-space error on them ``(before, after)``."""
    fitted = copy.deepcopy(model)
    latent = torch.cat([latent_frames(model, *read_audio(f)) for f in files])  # [N, D]
    old_res = new_res = latent.t()[None]                                       # [1, D, N]
    errors = []
    for old, new in zip(model.quantizer.layers, fitted.quantizer.layers):
        e_old, e_new = old.project(old_res)[0], new.project(new_res)[0]          # [N, d]
        new.embed.copy_(lloyd(e_new, new.embed.clone(), iters))
        errors.append((relative_error(e_old, old.embed), relative_error(e_new, new.embed)))
        old_res = old_res - old.decode(nearest(e_old, old.embed)[None])
        new_res = new_res - new.decode(nearest(e_new, new.embed)[None])
    return fitted, errors


def roundtrip_fn(model, n_q: int, encode):
    """``roundtrip(wav, sr) -> (decoded, bytes)`` through ``encode(latent [B, D, F]) -> codes``."""

    @torch.inference_mode()
    def roundtrip(wav: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
        x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
        if sr != model.sample_rate:
            x = torchaudio.functional.resample(x, sr, model.sample_rate)
        x = x[:, None]
        codes = encode(model.encoder(model._pad(x)))
        y = model.decode(codes, x.shape[-1])[:, 0]
        if sr != model.sample_rate:
            y = torchaudio.functional.resample(y, model.sample_rate, sr)[..., : wav.shape[-1]]
        return y.numpy(), codes.numel() * model.config.quantizer.bits // 8

    return roundtrip


def beam_encoder(model, n_q: int, width: int):
    tables = [decoded_codewords(layer) for layer in model.quantizer.layers[:n_q]]

    def encode(latent: torch.Tensor) -> torch.Tensor:
        b, d, f = latent.shape
        target = continuous(model, latent, n_q).transpose(1, 2).reshape(-1, d)
        return beam_codes(tables, target, width).view(n_q, b, f).transpose(0, 1)

    return encode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="bundled name or model file (default: the default model)")
    p.add_argument("--data", required=True, help="folder of clips to score (e.g. the corpus speech16k/valid)")
    p.add_argument("--every", type=int, default=1, help="score every K-th file")
    p.add_argument("--stages", default="3,6,12", help="numbers of quantizer stages to score")
    p.add_argument("--beam", type=int, default=8, help="beam width (0: no beam rows)")
    p.add_argument("--train", nargs="*", default=[], help="folders whose latents refit the codebooks (none: no refit rows)")
    p.add_argument("--train-every", type=int, default=10, help="use every K-th training file")
    p.add_argument("--iters", type=int, default=20, help="Lloyd iterations of the refit")
    p.add_argument("--json", default=None, help="write the rows here")
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    model = rotcodec.load_model(args.model).eval()
    stages = [int(n) for n in args.stages.split(",") if n]
    if any(not 1 <= n <= model.n_q for n in stages):
        raise SystemExit(f"stage counts must lie in 1..{model.n_q}")
    clips = [read_audio(f) for f in audio_files(args.data)[::args.every]]
    # Greedy and refit rows code greedily whatever the model file's own beam (quantizer.beam).
    variants = [("greedy", model, lambda n: lambda z: model.quantizer.encode(z, n, beam=1))]
    if args.beam > 0:
        variants.append((f"beam {args.beam}", model, lambda n: beam_encoder(model, n, args.beam)))
        variants.append((f"code-space beam {args.beam}", model,
                         lambda n: lambda z: model.quantizer.encode(z, n, beam=args.beam)))
    out = {"model": args.model, "data": args.data, "clips": len(clips), "rows": []}
    if args.train:
        files = [f for folder in args.train for f in audio_files(folder)[::args.train_every]]
        t = time.time()
        fitted, errors = refit(model, files, args.iters)
        print(f"refit on {len(files)} files in {time.time() - t:.0f} s; relative code-space error on them, "
              f"stage by stage (before -> after): " + ", ".join(f"{a:.3f} -> {b:.3f}" for a, b in errors), flush=True)
        out["refit_errors"] = errors
        variants.append(("refit", fitted, lambda n: lambda z: fitted.quantizer.encode(z, n, beam=1)))
    print(f"{model.config.name}: {len(clips)} clips from {args.data}", flush=True)
    print("| encode | stages | PESQ-WB | STOI | SI-SDR dB | mel |\n|---|---|---|---|---|---|")
    for n_q in stages:
        for name, m, encoder in variants:
            s = score_clips(name, model.bitrate(n_q) / 1000, clips, roundtrip_fn(m, n_q, encoder(n_q)))
            print(f"| {name} | {n_q} | {s.pesq:.3f} | {s.stoi:.3f} | {s.si_sdr:.2f} | {s.mel:.3f} |", flush=True)
            out["rows"].append({**s.as_dict(), "encode": name, "stages": n_q})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
