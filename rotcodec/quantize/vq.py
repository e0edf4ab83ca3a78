"""One vector-quantisation stage: projection to a small code space, lookup, estimator, codebook care.

Data flow for ``x [B, D, F]``:
    e = in_proj(x)  [B, d, F]  (optionally L2-normalised)  ->  codes [B, F]  ->  q = codebook[codes]
    out = estimator(e, q)  (value q exactly)  ->  out_proj(out)  [B, D, F]

How the codebook learns (``config.codebook``), since the estimator gives it no gradient:
    "ema":  codewords are buffers, moved towards the mean of their assigned vectors by an
            exponential moving average (k-means initialised from the first training batch);
    "loss": codewords are a parameter trained by ``vq/codebook = ||sg(e) - q||^2``;
    "simvq": codewords are ``C W^T``, a frozen buffer ``C`` (k-means initialised) through one learned
            ``d x d`` map ``W`` (identity at first) trained by the same ``vq/codebook`` loss: a step
            moves every codeword, used or not (SimVQ). The lookup and the estimator see only the
            codewords, so the rotation trick is unchanged.
Either way, codes whose EMA usage falls below ``dead_code_threshold`` times the uniform usage
are replaced by random encoder vectors from the current batch (0 disables).
"""

from __future__ import annotations

import functools

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from rotcodec.config import QuantizerConfig
from rotcodec.quantize.codebook_ops import all_reduce_, broadcast_, code_histogram, kmeans, nearest, perplexity, sample_vectors
from rotcodec.quantize.rotation import rotation_stats, rotation_trick, straight_through

__all__ = ["VectorQuantizer", "VQResult"]


class VQResult(NamedTuple):
    """Output of one stage's forward.

    quantized: ``[B, D, F]`` output projection of the quantised latent.
    codes: ``[B, F]`` int64.
    losses: ``vq/commit`` (``||e - sg(q)||^2``) and ``vq/codebook`` (0 under EMA), scalar tensors.
    metrics: scalar tensors over active items: ``usage`` (fraction of codes used in the batch),
        ``perplexity``, ``lambda`` (mean ||q||/||e||), ``obtuse`` (fraction with e.q < 0),
        ``qerr`` (mean ||e - q||^2), ``qerr_rel`` (qerr / mean ||e||^2).
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    losses: dict[str, torch.Tensor]
    metrics: dict[str, torch.Tensor]


def _masked_mean(per_vector: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``per_vector [N]`` over ``mask [N]``; 0 (with graph) when nothing is active."""
    return (per_vector * mask).sum() / mask.sum().clamp_min(1.0)


class VectorQuantizer(nn.Module):
    """A single VQ stage over latents of dimension ``dim`` (see module docstring)."""

    def __init__(self, dim: int, config: QuantizerConfig):
        super().__init__()
        self.config = config
        self.dim = dim
        k, d = config.codebook_size, config.code_dim
        self.in_proj = weight_norm(nn.Conv1d(dim, d, 1))
        self.out_proj = weight_norm(nn.Conv1d(d, dim, 1))
        init = torch.randn(k, d)
        if config.normalize:
            init = F.normalize(init, dim=-1)
        if config.codebook == "loss":
            self.embed = nn.Parameter(init)
        elif config.codebook == "simvq":
            self.register_buffer("embed", init)
            self.embed_map = nn.Linear(d, d, bias=False)
            nn.init.eye_(self.embed_map.weight)
        else:
            self.register_buffer("embed", init)
            self.register_buffer("embed_avg", init.clone())
        # EMA of per-step code counts (decay ema_decay): the EMA codebook update's denominator.
        self.register_buffer("cluster_size", torch.ones(k))
        # Faster EMA of the same counts (decay dead_code_decay): dead-code detection, both modes.
        self.register_buffer("recent_usage", torch.ones(k))
        self.register_buffer("initialized", torch.tensor(not config.kmeans_init))
        self._estimator = {
            "rotation": rotation_trick,
            "rotation_noscale": functools.partial(rotation_trick, rescale=False),
            "ste": straight_through,
        }[config.estimator]

    # ----- lookups -------------------------------------------------------------------------
    def codewords(self) -> torch.Tensor:
        """The codebook as used for lookup and decoding, ``[K, d]``."""
        embed = self.embed_map(self.embed) if self.config.codebook == "simvq" else self.embed
        return F.normalize(embed, dim=-1) if self.config.normalize else embed

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, D, F]`` -> code-space vectors ``[B, F, d]``.

        The 1x1 convolutions ``in_proj``/``out_proj`` are applied as the matrix products they are
        (``F.linear`` on ``[B, F, D]``): the same arithmetic without the convolution's set-up,
        which on the CPU cost more than the product for these small shapes (24 per step)."""
        e = F.linear(x.transpose(1, 2), self.in_proj.weight.squeeze(-1), self.in_proj.bias)
        return F.normalize(e, dim=-1) if self.config.normalize else e

    def unproject(self, q: torch.Tensor) -> torch.Tensor:
        """Code-space vectors ``[B, F, d]`` -> ``[B, D, F]`` through ``out_proj``."""
        return F.linear(q, self.out_proj.weight.squeeze(-1), self.out_proj.bias).transpose(1, 2)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, D, F]`` -> codes ``[B, F]`` (int64)."""
        e = self.project(x)
        return nearest(e.reshape(-1, e.shape[-1]), self.codewords()).view(e.shape[:2])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes ``[B, F]`` -> ``[B, D, F]``; equal to the eval-mode ``forward(x).quantized``."""
        return self.unproject(F.embedding(codes, self.codewords()))

    # ----- training forward ----------------------------------------------------------------
    def forward(self, x: torch.Tensor, active: torch.Tensor | None = None, metrics: bool = True) -> VQResult:
        """Quantise ``x [B, D, F]``.

        ``active [B]`` (bool) marks the batch items for which this stage is used (quantizer
        dropout); inactive items are still coded but excluded from losses, metrics and codebook
        updates. The caller masks their output. ``metrics=False`` leaves the diagnostics out (an
        empty dict): they change nothing in training, and a step that does not log them saves
        their cost (a third of the quantizer's time on the CPU).
        """
        b, _, f = x.shape
        e = self.project(x)  # [B, F, d]
        flat = e.reshape(-1, e.shape[-1])
        mask = torch.ones(b, f, device=x.device) if active is None else active[:, None].float().expand(b, f)
        mask = mask.reshape(-1)
        # k-means init and dead-code replacement draw from every vector of the batch (the residual
        # of an item is real data for this stage even when dropout leaves the stage unused), so
        # no rank of a DDP run ever skips a collective because its own batch had no active item.
        vectors = flat.detach()
        if self.training and not bool(self.initialized):
            self._kmeans_init(vectors)
        codebook = self.codewords()
        codes = nearest(flat, codebook)
        q = F.embedding(codes, codebook)  # [N, d], carries the codebook's graph in "loss" mode
        out = self._estimator(flat, q.detach())
        losses = {
            "vq/commit": _masked_mean((flat.float() - q.detach().float()).pow(2).mean(-1), mask),
            "vq/codebook": _masked_mean((flat.detach().float() - q.float()).pow(2).mean(-1), mask)
            if self.config.codebook in ("loss", "simvq") else flat.new_zeros((), dtype=torch.float32),
        }
        hist = code_histogram(codes[mask > 0], self.config.codebook_size)
        if self.training:
            self._update_codebook(vectors, mask > 0, codes, hist)
        stats = self._metrics(flat, q, mask, hist) if metrics else {}
        quantized = self.unproject(out.view(b, f, -1))
        return VQResult(quantized, codes.view(b, f), losses, stats)

    @torch.no_grad()
    def _metrics(self, flat, q, mask, hist) -> dict[str, torch.Tensor]:
        sel = mask > 0
        err = (flat.detach().float() - q.detach().float()).pow(2).sum(-1)
        stats = rotation_stats(flat[sel], q[sel], self.config.eps)
        energy = _masked_mean(flat.float().pow(2).sum(-1), mask)
        qerr = _masked_mean(err, mask)
        return {
            "usage": (hist > 0).float().mean(),
            "perplexity": perplexity(hist),
            "lambda": stats["lambda"],
            "obtuse": stats["obtuse"],
            "qerr": qerr,
            "qerr_rel": qerr / energy.clamp_min(1e-12),
        }

    # ----- codebook care -------------------------------------------------------------------
    @torch.no_grad()
    def _kmeans_init(self, vectors: torch.Tensor) -> None:
        """Initialise the codebook by k-means on the first training batch (rank 0's, under DDP)."""
        k = self.config.codebook_size
        centres, counts = kmeans(vectors, k, self.config.kmeans_iters, self.config.normalize)
        broadcast_(centres)
        broadcast_(counts)
        self.embed.data.copy_(centres)
        mean = counts.mean().clamp_min(1e-3)
        self.cluster_size.copy_(torch.full_like(counts, float(mean)))
        self.recent_usage.copy_(self.cluster_size)
        if self.config.codebook == "ema":
            self.embed_avg.copy_(centres * self.cluster_size[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update_codebook(self, vectors: torch.Tensor, active: torch.Tensor, codes: torch.Tensor,
                         hist: torch.Tensor) -> None:
        """EMA statistics from the active vectors; dead-code replacement from all of them."""
        cfg = self.config
        decay = cfg.ema_decay
        hist = all_reduce_(hist.clone())
        self.cluster_size.mul_(decay).add_(hist, alpha=1 - decay)
        self.recent_usage.mul_(cfg.dead_code_decay).add_(hist, alpha=1 - cfg.dead_code_decay)
        if cfg.codebook == "ema":
            sums = torch.zeros_like(self.embed).index_add_(0, codes[active], vectors[active].float())
            all_reduce_(sums)
            self.embed_avg.mul_(decay).add_(sums, alpha=1 - decay)
            # Laplace smoothing keeps rarely used codes from dividing by ~0.
            n = self.cluster_size.sum()
            k = cfg.codebook_size
            smoothed = (self.cluster_size + 1e-5) / (n + k * 1e-5) * n
            self.embed.copy_(self.embed_avg / smoothed[:, None])
        if cfg.dead_code_threshold > 0:
            self._replace_dead(vectors)

    @torch.no_grad()
    def _replace_dead(self, vectors: torch.Tensor) -> None:
        mean = self.recent_usage.mean()
        dead = self.recent_usage < self.config.dead_code_threshold * mean
        n_dead = int(broadcast_(dead.sum().clone()))
        if n_dead == 0:
            return
        fresh = sample_vectors(vectors.float(), self.config.codebook_size)
        broadcast_(fresh)
        broadcast_(dead)
        if self.config.codebook == "simvq":  # the frozen row that the map takes onto the fresh vector
            fresh = torch.linalg.lstsq(self.embed_map.weight.float(), fresh.T).solution.T
        self.embed.data.copy_(torch.where(dead[:, None], fresh, self.embed.data))
        # A revived code gets the average usage, so it has time to attract vectors before it is
        # judged again.
        self.recent_usage.copy_(torch.where(dead, mean, self.recent_usage))
        self.cluster_size.copy_(torch.where(dead, self.cluster_size.mean(), self.cluster_size))
        if self.config.codebook == "ema":
            self.embed_avg.copy_(self.embed * self.cluster_size[:, None])
