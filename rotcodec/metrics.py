"""Objective quality metrics for a decoded signal against its reference.

All take ``ref`` and ``est`` of the same shape, ``[T]`` or ``[C, T]`` (torch or numpy); with
several channels the per-channel values are averaged.

* :func:`si_sdr`: scale-invariant signal-to-distortion ratio in dB (higher is better).
* :func:`mel_distance`: multi-scale log-mel L1 distance (lower is better; 0 for identical signals).
* :func:`pesq_wb`: wide-band PESQ (MOS-LQO, about 1..4.6; higher is better), computed at 16 kHz.
* :func:`stoi`: short-time objective intelligibility (0..1, higher is better; optional ``pystoi``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

__all__ = ["si_sdr", "si_sdr_rows", "mel_distance", "pesq_wb", "stoi", "MEL_WINDOWS"]

MEL_WINDOWS = (512, 1024, 2048)
"""Window sizes of :func:`mel_distance` at 16 kHz; scaled to other rates (nearest power of two)."""
PESQ_RATE = 16000
PESQ_MIN_SECONDS = 0.25


def _pair(ref, est) -> tuple[torch.Tensor, torch.Tensor]:
    """Both as float64 ``[C, T]`` tensors of the same shape."""
    out = []
    for name, x in (("ref", ref), ("est", est)):
        x = torch.from_numpy(np.asarray(x)) if not isinstance(x, torch.Tensor) else x.detach().cpu()
        if x.dim() == 1:
            x = x[None]
        if x.dim() != 2:
            raise ValueError(f"{name} must be [T] or [C, T], got shape {tuple(x.shape)}")
        out.append(x.to(torch.float64))
    if out[0].shape != out[1].shape:
        raise ValueError(f"ref and est shapes differ: {tuple(out[0].shape)} vs {tuple(out[1].shape)}")
    if out[0].shape[-1] == 0:
        raise ValueError("signals are empty")
    return out[0], out[1]


def si_sdr(ref, est, eps: float = 1e-10) -> float:
    """Scale-invariant SDR in dB: ``10 log10(||a r||^2 / ||a r - e||^2)`` with ``a = <e, r> / ||r||^2``
    on zero-mean signals (Le Roux et al. 2019). Identical signals give a large finite value
    (``eps`` keeps it finite); a silent reference gives about 0."""
    r, e = _pair(ref, est)
    return float(si_sdr_rows(r, e, eps).mean())


def si_sdr_rows(ref: torch.Tensor, est: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """SI-SDR in dB of each row of ``est [..., T]`` against ``ref [..., T]``, differentiable (the
    training loss ``negative_si_sdr`` uses it too); computed in the inputs' dtype."""
    r = ref - ref.mean(-1, keepdim=True)
    e = est - est.mean(-1, keepdim=True)
    alpha = (e * r).sum(-1, keepdim=True) / (r.pow(2).sum(-1, keepdim=True) + eps)
    target = alpha * r
    ratio = (target.pow(2).sum(-1) + eps) / ((e - target).pow(2).sum(-1) + eps)
    return 10 * torch.log10(ratio)


def _mel_windows(sample_rate: int) -> list[int]:
    return [1 << max(5, round(math.log2(w * sample_rate / 16000))) for w in MEL_WINDOWS]


def mel_distance(ref, est, sample_rate: int, n_mels: int = 80) -> float:
    """Mean over three window sizes of the L1 distance between log10 mel spectrograms.

    Windows 512/1024/2048 samples at 16 kHz (32/64/128 ms), scaled to ``sample_rate``; hop a
    quarter window; magnitude (power 1) mel spectrograms clamped at 1e-5 before the log.
    """
    import torchaudio  # deferred: only this metric needs it

    r, e = _pair(ref, est)
    r, e = r.float(), e.float()
    total = 0.0
    windows = _mel_windows(sample_rate)
    for n_fft in windows:
        mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n_fft, hop_length=n_fft // 4,
                                                   n_mels=n_mels, power=1.0)
        short = n_fft // 2 + 1 - r.shape[-1]  # reflect padding needs more than half a window
        rp, ep = (torch.nn.functional.pad(x, (0, short)) for x in (r, e)) if short > 0 else (r, e)
        lr = torch.log10(mel(rp).clamp_min(1e-5))
        le = torch.log10(mel(ep).clamp_min(1e-5))
        total += float((lr - le).abs().mean())
    return total / len(windows)


def pesq_wb(ref, est, sample_rate: int) -> float | None:
    """Wide-band PESQ of ``est`` against ``ref`` after resampling both to 16 kHz.

    Returns None when the signal is shorter than 0.25 s, a channel of either signal is all
    zeros (PESQ cannot score it), or PESQ finds no speech in it (``NoUtterancesError``). Needs the ``pesq`` package (imported here, not at import time).
    """
    import pesq
    import torchaudio.functional

    r, e = _pair(ref, est)
    silent = bool(r.abs().amax(-1).eq(0).any() or e.abs().amax(-1).eq(0).any())
    if r.shape[-1] < PESQ_MIN_SECONDS * sample_rate or silent:
        return None  # too short, or a silent channel (PESQ divides by each signal's peak)
    r, e = r.float(), e.float()
    if sample_rate != PESQ_RATE:
        r = torchaudio.functional.resample(r, sample_rate, PESQ_RATE)
        e = torchaudio.functional.resample(e, sample_rate, PESQ_RATE)
    scores = []
    for rc, ec in zip(r.numpy().astype(np.float64), e.numpy().astype(np.float64)):
        try:
            scores.append(pesq.pesq(PESQ_RATE, rc, ec, "wb"))
        except (pesq.NoUtterancesError, pesq.BufferTooShortError):
            return None
    return float(np.mean(scores))


def stoi(ref, est, sample_rate: int) -> float | None:
    """STOI (Taal et al. 2011) of ``est`` against ``ref``, averaged over channels, from the
    ``pystoi`` package (the ``eval`` extra). Returns None when ``pystoi`` is not installed or the
    signal holds too little non-silent audio to score (under about 0.4 s)."""
    try:
        from pystoi import stoi as _stoi
    except ImportError:
        return None
    r, e = _pair(ref, est)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = [_stoi(rc, ec, sample_rate, extended=False) for rc, ec in zip(r.numpy(), e.numpy())]
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return None  # too little speech once silent frames are removed: pystoi returns 1e-5
    return float(np.mean(scores))
