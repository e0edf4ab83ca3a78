"""The spectral losses' per-resolution terms with their gradients written out.

Each term is a function of the estimate's complex STFT ``A [B, K, N]`` and of what the reference
contributes (computed once, without a graph). Autograd through the plain expressions ran about 65
full-size element-wise passes per resolution forward and backward (each ``*``, ``pow`` and clamp
and their backward formulas, every one a memory pass over ``B x K x N`` values); written out, a
term takes about 25, in place where it can. The values are the plain expressions' to float
rounding and the gradients are their derivatives (``tests/test_step_speedups.py`` compares both
with autograd through :mod:`rotcodec.train.losses`' plain definitions). Float32; the caller
switches autocast off.

PyTorch's gradient of a real loss with respect to a complex tensor ``z = x + iy`` is
``dL/dx + i dL/dy``; the backward functions return that.
"""

from __future__ import annotations

import math

import torch

__all__ = ["compressed_parts", "compressed_term", "log_mel", "log_mel_l1"]


def compressed_parts(spec: torch.Tensor, power: float, floor: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference side of :func:`compressed_term`, without a graph: ``X |X|^(c - 1)`` as real and
    imaginary parts and ``|X|^c``, with ``|X|`` floored at ``floor``."""
    with torch.no_grad():
        re, im = spec.real, spec.imag
        p = re * re
        p.addcmul_(im, im).clamp_min_(floor * floor)
        s = p.pow((power - 1.0) / 2)
        return re * s, im * s, p.pow_(power / 2)


class _CompressedTerm(torch.autograd.Function):
    """``mean |C(A) - C(B)|^2 + mean (|A|^c - |B|^c)^2`` with ``C(X) = X |X|^(c-1)``.

    With ``p = max(|A|^2, floor^2)``, ``s = p^((c-1)/2)``, ``m = p^(c/2)`` and the differences
    ``dr, di, dm`` of the real part, imaginary part and magnitude terms, the gradient is::

        dL/dRe A = 2/n (dr s + Re A t),   dL/dIm A = 2/n (di s + Im A t),
        t = ((c - 1) s (dr Re A + di Im A) + c m dm) / p      (0 where p was floored)
    """

    @staticmethod
    def forward(ctx, spec, ref_re, ref_im, ref_mag, power: float, floor: float):
        re, im = spec.real, spec.imag
        p = re * re
        p.addcmul_(im, im).clamp_min_(floor * floor)
        s = p.pow((power - 1.0) / 2)
        m = p.pow(power / 2)
        dr = (re * s).sub_(ref_re)
        di = (im * s).sub_(ref_im)
        dm = m - ref_mag
        n = dr.numel()
        value = (dr.square().sum() + di.square().sum()) / n + dm.square().sum() / n
        ctx.save_for_backward(spec, p, s, m, dr, di, dm)
        ctx.power, ctx.floor2 = power, floor * floor
        return value

    @staticmethod
    def backward(ctx, grad):
        spec, p, s, m, dr, di, dm = ctx.saved_tensors
        re, im = spec.real, spec.imag
        c = ctx.power
        t = dr * re
        t.addcmul_(di, im).mul_(s).mul_(c - 1.0).addcmul_(m, dm, value=c).div_(p)
        t.masked_fill_(p <= ctx.floor2, 0.0)
        scale = grad * (2.0 / dr.numel())
        g_re = (dr * s).addcmul_(re, t)
        g_im = (di * s).addcmul_(im, t)
        return torch.complex(g_re, g_im).mul_(scale), None, None, None, None, None


def compressed_term(spec: torch.Tensor, ref: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                    power: float, floor: float) -> torch.Tensor:
    """One resolution of the compressed STFT loss: the estimate's complex STFT ``spec`` against the
    reference's :func:`compressed_parts`. A scalar."""
    return _CompressedTerm.apply(spec, *ref, power, floor)


def log_mel(spec: torch.Tensor, fb: torch.Tensor, floor: float, tiny: float) -> torch.Tensor:
    """The reference side of :func:`log_mel_l1`, without a graph: ``log10(max(fb |X|, floor))``
    with ``|X| = sqrt(max(re^2 + im^2, tiny))``."""
    with torch.no_grad():
        re, im = spec.real, spec.imag
        p = re * re
        mag = p.addcmul_(im, im).clamp_min_(tiny).sqrt_()
        return (fb @ mag).clamp_min_(floor).log10_()


class _LogMelL1(torch.autograd.Function):
    """``mean |log10(max(fb |A|, floor)) - ref|`` with ``|A| = sqrt(max(|A|^2, tiny))``.

    Gradient: ``g = sign(d) / n`` on the log mel difference ``d``, divided by ``mel ln 10`` where
    the mel value was not floored (0 where it was), taken back through the filterbank
    (``fb^T g``) and through the magnitude (``Re A / |A|``, ``Im A / |A|``; 0 where ``|A|^2 <
    tiny``)."""

    @staticmethod
    def forward(ctx, spec, fb, ref_log, floor: float, tiny: float):
        re, im = spec.real, spec.imag
        p = re * re
        p.addcmul_(im, im)
        small = p < tiny
        mag = p.clamp_min_(tiny).sqrt_()
        mel = fb @ mag
        d = mel.clamp_min(floor).log10_().sub_(ref_log)
        n = d.numel()
        value = d.abs().sum() / n
        ctx.save_for_backward(spec, fb, mag, small, mel, d)
        ctx.floor = floor
        return value

    @staticmethod
    def backward(ctx, grad):
        spec, fb, mag, small, mel, d = ctx.saved_tensors
        g = torch.sign(d).mul_(grad / d.numel())
        g.div_(mel.clamp_min(ctx.floor).mul_(math.log(10.0))).masked_fill_(mel < ctx.floor, 0.0)
        w = (fb.t() @ g).div_(mag).masked_fill_(small, 0.0)
        return torch.complex(spec.real * w, spec.imag * w), None, None, None, None


def log_mel_l1(spec: torch.Tensor, fb: torch.Tensor, ref_log: torch.Tensor, floor: float, tiny: float) -> torch.Tensor:
    """One scale of the mel loss: the estimate's complex STFT ``spec`` against the reference's
    :func:`log_mel`. A scalar."""
    return _LogMelL1.apply(spec, fb, ref_log, floor, tiny)
