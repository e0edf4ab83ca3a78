"""Small signal-conditions shared by training augmentation and the conditions benchmark: a
telephone band, a low-pass, noise at a set SNR. torchaudio does the filtering; shapes ``[..., T]``."""

from __future__ import annotations

import torch
import torchaudio.functional as AF

__all__ = ["phone_band", "lowpass", "add_noise"]


def phone_band(wav: torch.Tensor, sr: int) -> torch.Tensor:
    """``wav [..., T]`` through a telephone channel: 300-3400 Hz (two biquad passes each side, 24
    dB/octave skirts) and, above 8 kHz sampling, the 8 kHz sampling of narrowband telephony (nothing
    above 4 kHz survives)."""
    for _ in range(2):
        wav = AF.lowpass_biquad(AF.highpass_biquad(wav, sr, 300.0), sr, 3400.0)
    if sr > 8000:
        wav = AF.resample(AF.resample(wav, sr, 8000), 8000, sr)[..., : wav.shape[-1]]
    return wav


def lowpass(wav: torch.Tensor, sr: int, hz: float) -> torch.Tensor:
    """``wav [..., T]`` low-passed at ``hz`` (two biquad passes: 24 dB/octave)."""
    for _ in range(2):
        wav = AF.lowpass_biquad(wav, sr, hz)
    return wav


def add_noise(wav: torch.Tensor, snr_db: float, g: torch.Generator, sr: int = 0, colour_hz: float = 0.0) -> torch.Tensor:
    """``wav [C, T]`` plus Gaussian noise at ``snr_db`` (white, or low-passed at ``colour_hz`` > 0
    with ``sr``). A silent ``wav`` has no SNR to set and is returned as it is."""
    noise = torch.randn(wav.shape, generator=g, dtype=wav.dtype)
    if colour_hz > 0:
        noise = AF.lowpass_biquad(noise, sr, colour_hz)
    if float(wav.pow(2).mean()) == 0.0:
        return wav
    return AF.add_noise(wav, noise, torch.full(wav.shape[:-1], float(snr_db), dtype=wav.dtype))
