"""Residual VQ: ``n_q`` stages, each quantising what the previous ones left, with quantizer dropout.

    residual_0 = z;  stage i quantises residual_i;  residual_{i+1} = residual_i - quantized_i
    z_q = sum_i quantized_i   over the stages active for each batch item

Gradient route (``config.residual_route``), a named choice:
    "detached": stage i sees the value ``residual_i`` but its input is ``sg(residual_i) + (z - sg(z))``,
                so each stage's estimator sends its gradient straight to ``z`` and the encoder
                receives the sum over active stages (``n_q * g`` under straight-through);
    "chained":  residuals keep the estimators' graph (EnCodec/DAC); under straight-through the
                encoder receives ``g`` once, through the first stage.
Both give the same forward values, and in eval mode ``decode(encode(z, n))`` equals
``forward(z, n).quantized`` when ``config.beam`` is 1 (greedy coding, what training sees); a wider
beam makes ``encode`` search code paths (:mod:`rotcodec.quantize.search`) for the same decoder.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from rotcodec.config import QuantizerConfig
from rotcodec.quantize.codes import check_codes
from rotcodec.quantize.search import beam_codes
from rotcodec.quantize.vq import VectorQuantizer

__all__ = ["ResidualVQ", "RVQResult"]


class RVQResult(NamedTuple):
    """Output of :meth:`ResidualVQ.forward`.

    quantized: ``[B, D, F]`` sum of the active stages' outputs.
    codes: ``[B, n_q, F]`` int64 (every stage is coded; inactive ones are just not used).
    losses: ``vq/commit`` and ``vq/codebook``, summed over stages (each averaged over its active items).
    metrics: ``vq/<name>/<stage>`` for each stage metric of :class:`VQResult` (when asked for), plus ``vq/n_q`` (mean
        number of active stages).
    n_active: ``[B]`` int64, the number of stages used for each item.
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    losses: dict[str, torch.Tensor]
    metrics: dict[str, torch.Tensor]
    n_active: torch.Tensor


class ResidualVQ(nn.Module):
    """Residual vector quantiser over latents ``[B, dim, F]`` with ``config.n_q`` stages."""

    def __init__(self, dim: int, config: QuantizerConfig):
        super().__init__()
        self.config = config
        self.dim = dim
        self.layers = nn.ModuleList(VectorQuantizer(dim, config) for _ in range(config.n_q))

    @property
    def n_q(self) -> int:
        return self.config.n_q

    def _check_n_q(self, n_q: int | None) -> int:
        n_q = self.n_q if n_q is None else int(n_q)
        if not 1 <= n_q <= self.n_q:
            raise ValueError(f"n_q must be between 1 and {self.n_q}, got {n_q}")
        return n_q

    def _draw_n_active(self, b: int, n_q: int, device: torch.device) -> torch.Tensor:
        """Quantizer dropout: each item independently, with probability ``dropout``, uses a uniform
        random number of stages in 1..n_q; otherwise all ``n_q``."""
        n = torch.full((b,), n_q, dtype=torch.long, device=device)
        if self.training and self.config.dropout > 0 and n_q > 1:
            drop = torch.rand(b, device=device) < self.config.dropout
            n = torch.where(drop, torch.randint(1, n_q + 1, (b,), device=device), n)
        return n

    def forward(self, z: torch.Tensor, n_q: int | None = None, metrics: bool = True) -> RVQResult:
        """Quantise ``z [B, dim, F]`` with up to ``n_q`` stages (all when None); ``metrics=False``
        leaves the per-stage diagnostics out (``vq/n_q`` stays)."""
        n_q = self._check_n_q(n_q)
        b = z.shape[0]
        n_active = self._draw_n_active(b, n_q, z.device)
        quantized = torch.zeros_like(z)
        residual = z
        codes, losses, stats = [], {}, {}
        for i, layer in enumerate(self.layers[:n_q]):
            active = n_active > i
            if self.config.residual_route == "detached":
                stage_in = residual.detach() + (z - z.detach())
            else:
                stage_in = residual
            res = layer(stage_in, active, metrics)  # an empty dict of metrics without them
            out = res.quantized
            quantized = quantized + out * active[:, None, None].to(out.dtype)
            residual = residual - out
            codes.append(res.codes)
            for name, value in res.losses.items():
                losses[name] = losses.get(name, 0.0) + value
            for name, value in res.metrics.items():
                stats[f"vq/{name}/{i}"] = value
        stats["vq/n_q"] = n_active.float().mean()
        return RVQResult(quantized, torch.stack(codes, dim=1), losses, stats, n_active)

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None, beam: int | None = None) -> torch.Tensor:
        """``z [B, dim, F]`` -> codes ``[B, n_q, F]`` (int64), searched with ``beam`` paths
        (default ``config.beam``; 1 is greedy)."""
        n_q = self._check_n_q(n_q)
        beam = self.config.beam if beam is None else int(beam)
        if beam != 1:
            return beam_codes(z, self.layers[:n_q], beam)
        residual = z
        codes = []
        for layer in self.layers[:n_q]:
            c = layer.encode(residual)
            codes.append(c)
            residual = residual - layer.decode(c)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes ``[B, n, F]`` (any ``1 <= n <= n_q``) -> latent ``[B, dim, F]``; codes that are not
        that raise as :func:`~rotcodec.quantize.codes.check_codes` says."""
        codes = check_codes(codes, self.config.codebook_size, self.n_q, min_frames=0, layout="[B, n_q, F]")
        n = codes.shape[1]
        out = None
        for i, layer in enumerate(self.layers[:n]):
            part = layer.decode(codes[:, i])
            out = part if out is None else out + part
        return out
