"""On-the-fly augmentation of training segments: what stands in for voices and rooms we lack.

A codec reconstructs what it is given, so the augmented segment is both input and target. Each kind
is a recipe setting (``[augment]``) with a probability and a range; torchaudio does the DSP:

* ``speed``: resampling by a factor (speed and pitch together, as Kaldi's speed perturbation);
* ``eq``: one to three random biquads (low shelf, high shelf, peak), gains in ``eq_db``;
* ``reverb``: a synthetic room, an exponentially decaying noise impulse response with an RT60 in
  ``reverb_rt60`` seconds and a direct path, mixed wet/dry;
* ``band``: band-limiting, the phone band (300-3400 Hz) or a low-pass at one of ``lowpass_hz``;
* ``noise``: coloured noise (white through a random low-pass) at an SNR in ``noise_snr_db``.

Level is not a kind here: the conditioning that follows (:mod:`rotcodec.coding.conditioning`)
brings every gain block to one level, exactly as the encoder does, so a random gain would be undone.

Every draw comes from the generator passed in, so a segment's augmentation is fixed by its seed
(a resumed run sees the same data). Shapes: ``[1, T]`` in, ``[1, T]`` out.
"""

from __future__ import annotations

import math
import torch
import torchaudio.functional as AF

from rotcodec.dsp import add_noise, lowpass, phone_band
from rotcodec.train.config import AugmentConfig

__all__ = ["AugmentConfig", "augment", "speed_span"]


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=g))


def _happens(g: torch.Generator, p: float) -> bool:
    return p > 0 and float(torch.rand(1, generator=g)) < p


def speed_span(cfg: AugmentConfig) -> float:
    """How much longer a source span must be than the segment so that any speed-up still fills it."""
    return max(1.0, cfg.speed_range[1]) if cfg.speed > 0 else 1.0


def _speed(wav: torch.Tensor, sr: int, factor: float) -> torch.Tensor:
    # Playing sr samples in 1/factor s: resample from sr*factor to sr (rates on a 100 Hz grid keep
    # the polyphase filter small).
    src = int(round(sr * factor / 100)) * 100
    return AF.resample(wav, src, sr) if src != sr else wav


def _eq(wav: torch.Tensor, sr: int, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    for _ in range(1 + int(torch.randint(0, 3, (1,), generator=g))):
        kind = int(torch.randint(0, 3, (1,), generator=g))
        gain = _uniform(g, *cfg.eq_db)
        if kind == 0:
            wav = AF.bass_biquad(wav, sr, gain, central_freq=_uniform(g, 80, 400))
        elif kind == 1:
            wav = AF.treble_biquad(wav, sr, gain, central_freq=_uniform(g, 2000, min(6000, 0.4 * sr)))
        else:
            f = math.exp(_uniform(g, math.log(150), math.log(0.4 * sr)))
            wav = AF.equalizer_biquad(wav, sr, f, gain, Q=_uniform(g, 0.5, 2.0))
    return wav


def _reverb(wav: torch.Tensor, sr: int, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    rt60 = _uniform(g, *cfg.reverb_rt60)
    n = max(2, int(rt60 * sr))
    t = torch.arange(n, dtype=wav.dtype) / sr
    ir = torch.randn(n, generator=g, dtype=wav.dtype) * torch.exp(-6.9078 * t / rt60)  # -60 dB at rt60
    ir[0] = 0.0
    ir = ir / ir.norm().clamp_min(1e-8)
    wet = AF.fftconvolve(wav, ir[None])[..., : wav.shape[-1]]
    mix = _uniform(g, *cfg.reverb_wet)
    dry_rms, wet_rms = wav.pow(2).mean().sqrt(), wet.pow(2).mean().sqrt().clamp_min(1e-8)
    return (1 - mix) * wav + mix * wet * (dry_rms / wet_rms)


def _band(wav: torch.Tensor, sr: int, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    if float(torch.rand(1, generator=g)) < cfg.phone_share:
        return phone_band(wav, sr)
    choices = [f for f in cfg.lowpass_hz if f < 0.45 * sr]
    if not choices:
        return wav
    return lowpass(wav, sr, choices[int(torch.randint(0, len(choices), (1,), generator=g))])


def _noise(wav: torch.Tensor, sr: int, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    colour = 0.0
    if float(torch.rand(1, generator=g)) < 0.7:  # coloured: white through a random low-pass
        colour = math.exp(_uniform(g, math.log(300), math.log(0.45 * sr)))
    return add_noise(wav, _uniform(g, *cfg.noise_snr_db), g, sr, colour)


def augment(wav: torch.Tensor, sample_rate: int, cfg: AugmentConfig, g: torch.Generator,
            length: int | None = None) -> torch.Tensor:
    """Augment ``wav [1, n]``; returns ``[1, length]`` (``length`` defaults to ``n``; a longer
    source span lets a speed-up still fill it, see :func:`speed_span`). Deterministic given ``g``."""
    length = wav.shape[-1] if length is None else length
    if _happens(g, cfg.speed):
        wav = _speed(wav, sample_rate, _uniform(g, *cfg.speed_range))
    wav = torch.nn.functional.pad(wav[..., :length], (0, max(0, length - wav.shape[-1])))
    if _happens(g, cfg.eq):
        wav = _eq(wav, sample_rate, cfg, g)
    if _happens(g, cfg.reverb):
        wav = _reverb(wav, sample_rate, cfg, g)
    if _happens(g, cfg.band):
        wav = _band(wav, sample_rate, cfg, g)
    if _happens(g, cfg.noise):
        wav = _noise(wav, sample_rate, cfg, g)
    return torch.nan_to_num(wav, nan=0.0, posinf=0.0, neginf=0.0).clamp(-1.0, 1.0)
