"""Gradient estimators through the (non-differentiable) nearest-code lookup.

Both functions take the encoder output ``e`` and its nearest code ``q`` (same shape ``[..., D]``,
vectors along the last axis) and return a tensor whose *forward value is exactly* ``q`` and whose
gradient reaches ``e`` only (``q`` is treated as a constant: the codebook never learns through the
estimator, it learns by EMA or by its own codebook loss, see ``vq.py``).

Straight-through (the baseline):   dL/de = g
Rotation trick (Fifty et al., ICLR 2025, arXiv 2410.06424):
                                   dL/de = lambda * R^T g,   lambda = ||q|| / ||e||,
where R is the rotation taking e/||e|| onto q/||q|| in the plane they span (identity elsewhere).
With e^ = e/||e||, q^ = q/||q||, r = (e^ + q^)/||e^ + q^||, all detached,
    R = I - 2 r r^T + 2 q^ e^^T
and the efficient form (no D x D matrix) is
    q~ = lambda * (e - 2 (r.e) r + 2 (e^.e) q^),
so d q~ / d e = lambda R and ||dL/de|| = lambda ||g||.

Exactness: the returned value is ``q + (q~ - sg(q~))``. ``x - x`` is exactly zero for any finite
float, so the forward value is bit-for-bit ``q`` in both train and eval mode, even when ``e`` is 0.
"""

from __future__ import annotations

import torch

__all__ = ["rotation_trick", "straight_through", "rotation_stats", "DEFAULT_EPS"]

DEFAULT_EPS = 1e-6


def straight_through(e: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Straight-through estimator: forward value ``q`` exactly, gradient ``dL/de = dL/dout``.

    Args:
        e: encoder output ``[..., D]`` (receives the gradient).
        q: its nearest code ``[..., D]`` (treated as a constant).
    Returns:
        ``[..., D]``, equal to ``q``, in the promoted dtype of ``e`` and ``q``.
    """
    dtype = torch.promote_types(e.dtype, q.dtype)
    return q.detach().to(dtype) + (e - e.detach()).to(dtype)


def _unit(x: torch.Tensor, norm: torch.Tensor, eps: float) -> torch.Tensor:
    return x / norm.clamp_min(eps)


def rotation_trick(e: torch.Tensor, q: torch.Tensor, eps: float = DEFAULT_EPS, rescale: bool = True) -> torch.Tensor:
    """Rotation-trick estimator: forward value ``q`` exactly, ``dL/de = lambda * R^T dL/dout``.

    ``rescale=False`` drops lambda (``dL/de = R^T dL/dout``, the gradient keeps its norm): the
    ablation's "rotation without rescaling" arm, which tells the rotation's effect from the scale's.

    Computed in float32 with autocast off (under bf16 the rotated value would drift 1-3 % from
    ``q``) and cast back to the promoted input dtype.

    Degenerate vectors, where the rotation is undefined or explodes:
      - ``||e|| <= eps`` or ``||q|| <= eps`` (silence and padding frames): the vector falls back to
        the straight-through gradient (lambda would be ~1/eps, or the gradient would vanish);
      - ``e ~ -q`` (``||e^ + q^|| <= eps``): ``r`` is set to 0, so ``R = I + 2 q^ e^^T``, which for
        ``q^ = -e^`` is the Householder reflection ``I - 2 e^ e^^T``: orthogonal, maps e^ onto q^,
        finite. (Exactly antiparallel vectors have no unique rotation; this picks a stable one.)

    ``e^`` and ``q^`` are computed once from the raw vectors; unit-norm inputs (L2-normalised
    lookup) are not renormalised through the graph, because every normalised quantity here is
    detached and only ``e`` itself carries the gradient.

    Args:
        e: encoder output ``[..., D]`` (receives the gradient).
        q: its nearest code ``[..., D]`` (treated as a constant).
        eps: norm threshold for the guards above.
        rescale: multiply by lambda = ||q|| / ||e|| (the paper's estimator) or not.
    Returns:
        ``[..., D]``, equal to ``q``, in the promoted dtype of ``e`` and ``q``.
    """
    dtype = torch.promote_types(e.dtype, q.dtype)
    with torch.autocast(device_type=e.device.type, enabled=False):
        e32 = e.float()
        q32 = q.detach().float()
        with torch.no_grad():
            e_norm = e32.norm(dim=-1, keepdim=True)
            q_norm = q32.norm(dim=-1, keepdim=True)
            e_hat = _unit(e32, e_norm, eps)
            q_hat = _unit(q32, q_norm, eps)
            s = e_hat + q_hat
            s_norm = s.norm(dim=-1, keepdim=True)
            r = torch.where(s_norm > eps, _unit(s, s_norm, eps), torch.zeros_like(s))
            valid = (e_norm > eps) & (q_norm > eps)
            lam = torch.where(valid, q_norm / e_norm.clamp_min(eps), torch.ones_like(q_norm))
            if not rescale:
                lam = torch.ones_like(lam)
        # e^.e == ||e|| in value, but written as a product so that the gradient is exactly lambda R^T g.
        rotated = e32 - 2.0 * (r * e32).sum(-1, keepdim=True) * r + 2.0 * (e_hat * e32).sum(-1, keepdim=True) * q_hat
        rotated = torch.where(valid, lam * rotated, e32)
        out = q32 + (rotated - rotated.detach())
    return out.to(dtype)


@torch.no_grad()
def rotation_stats(e: torch.Tensor, q: torch.Tensor, eps: float = DEFAULT_EPS) -> dict[str, torch.Tensor]:
    """Diagnostics of the rotation for a batch of pairs ``[..., D]`` (float32 scalars).

    Returns ``lambda`` (mean ||q||/||e|| over non-degenerate vectors), ``obtuse`` (fraction of
    pairs with e.q < 0, where the rotation direction is least stable) and ``degenerate``
    (fraction that fell back to straight-through because a norm was <= eps).
    """
    e32, q32 = e.detach().float(), q.detach().float()
    e_norm = e32.norm(dim=-1)
    q_norm = q32.norm(dim=-1)
    valid = (e_norm > eps) & (q_norm > eps)
    lam = (q_norm / e_norm.clamp_min(eps))[valid]
    zero = e32.new_zeros(())
    return {
        "lambda": lam.mean() if lam.numel() else zero,
        "obtuse": ((e32 * q32).sum(-1) < 0).float().mean() if e32.numel() else zero,
        "degenerate": (~valid).float().mean() if valid.numel() else zero,
    }
