"""Small pure functions on codebooks: nearest-code lookup, k-means, sampling, histograms.

All distances are computed in float32 with autocast off, so ``encode`` and the training forward
pick the same codes whatever precision the surrounding model runs in.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

__all__ = ["nearest", "kmeans", "sample_vectors", "code_histogram", "perplexity", "broadcast_", "all_reduce_"]


def nearest(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row (squared L2) for each row of ``x``.

    Args:
        x: ``[N, d]`` vectors.
        codebook: ``[K, d]``.
    Returns:
        ``[N]`` int64 codes.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float()
        c = codebook.float()
        # ||x||^2 is the same for every code, so it is left out of the argmin. One addmm writes
        # ||c||^2 - 2 x.c in a single pass over the [N, K] distances (the product scaled by -2, exact,
        # and added once: the same values as the product, scaling and subtraction done apart), and
        # min().indices is the argmin (the first minimum, like argmin) at half its cost on the CPU.
        dist_ = torch.addmm(c.pow(2).sum(-1)[None, :], x, c.t(), alpha=-2.0)
        return dist_.min(dim=-1).indices


def sample_vectors(x: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` rows of ``x [N, d]`` drawn at random (with replacement only when ``N < n``)."""
    if x.shape[0] >= n:
        idx = torch.randperm(x.shape[0], device=x.device, generator=generator)[:n]
    else:
        idx = torch.randint(0, x.shape[0], (n,), device=x.device, generator=generator)
    return x[idx]


def kmeans(x: torch.Tensor, k: int, iters: int, normalize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means (spherical when ``normalize``) of ``x [N, d]`` into ``k`` centres.

    Returns ``(centres [k, d], counts [k])``; a centre that attracts no point keeps its value.
    """
    x = x.detach().float()
    if normalize:
        x = F.normalize(x, dim=-1)
    centres = sample_vectors(x, k)
    counts = torch.zeros(k, device=x.device)
    for _ in range(iters):
        codes = nearest(x, centres)
        counts = torch.bincount(codes, minlength=k).float()
        sums = torch.zeros_like(centres).index_add_(0, codes, x)
        new = sums / counts.clamp_min(1.0)[:, None]
        if normalize:
            new = F.normalize(new, dim=-1)
        centres = torch.where(counts[:, None] > 0, new, centres)
    return centres, counts


def code_histogram(codes: torch.Tensor, k: int) -> torch.Tensor:
    """Counts ``[k]`` (float32) of each code in ``codes`` (any shape)."""
    return torch.bincount(codes.reshape(-1), minlength=k).float()


def perplexity(hist: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of a code histogram: 1 when one code is used, k when all are used equally."""
    p = hist / hist.sum().clamp_min(1.0)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-10))).sum())


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def all_reduce_(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` in place over DDP ranks (no-op outside ``torch.distributed``)."""
    if _distributed():
        dist.all_reduce(t)
    return t


def broadcast_(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Copy rank ``src``'s ``t`` to every rank in place (no-op outside ``torch.distributed``)."""
    if _distributed():
        dist.broadcast(t, src)
    return t
