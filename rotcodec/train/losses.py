"""Reconstruction and adversarial losses. Each returns a scalar tensor; all are 0 for identical
inputs (the adversarial ones compare discriminator outputs, see their docstrings)."""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from rotcodec.metrics import si_sdr_rows
from rotcodec.train.loss_terms import compressed_parts, compressed_term, log_mel, log_mel_l1

TINY = 1e-24  # floor of |X|^2 under the mel loss's square root

__all__ = ["MultiScaleMelLoss", "CompressedStftLoss", "waveform_l1", "negative_si_sdr", "generator_adv_loss", "discriminator_adv_loss", "feature_matching_loss"]


class MultiScaleMelLoss(nn.Module):
    """Mean over scales of the L1 distance between log10 mel magnitudes (torchaudio mel filterbanks).

    Scales are given at 16 kHz as ``(window, n_mels)`` pairs and scaled with the sample rate; each
    is what ``torchaudio.transforms.MelSpectrogram(power=1)`` computes (Hann window, hop window/4,
    centred with reflection, slaney filters), with the magnitude taken in real arithmetic as
    ``sqrt(max(re^2 + im^2, 1e-24))``: the same value as complex ``abs`` to float rounding, with a finite
    gradient at silence. Float32 with autocast off (the log of small bf16 magnitudes is too coarse).
    """

    def __init__(self, sample_rate: int, scales: tuple[tuple[int, int], ...] = ((256, 32), (512, 64), (1024, 128), (2048, 128)),
                 floor: float = 1e-5):
        super().__init__()
        self.floor = floor
        self.windows = []
        for i, (window, n_mels) in enumerate(scales):
            win = int(window * sample_rate / 16000)
            self.windows.append(win)
            self.register_buffer(f"window{i}", torch.hann_window(win), persistent=False)
            fb = torchaudio.functional.melscale_fbanks(win // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate,
                                                       norm="slaney", mel_scale="slaney")
            self.register_buffer(f"fb{i}", fb.t().contiguous(), persistent=False)  # [n_mels, bins]

    def spec(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """``x [B, T]`` -> complex STFT ``[B, bins, frames]`` at scale ``i``."""
        win = self.windows[i]
        return torch.stft(x, n_fft=win, hop_length=win // 4, win_length=win, window=getattr(self, f"window{i}"),
                          center=True, pad_mode="reflect", return_complex=True)

    def forward(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """``est, ref [B, 1, T]`` -> scalar. Each scale's term has its gradient written out
        (:func:`rotcodec.train.loss_terms.log_mel_l1`): the same values as autograd through the
        filterbank, the magnitude, the log10 and the mean absolute difference."""
        with torch.autocast(device_type=est.device.type, enabled=False):
            est, ref = est.float().flatten(1), ref.float().flatten(1)
            total = est.new_zeros(())
            for i in range(len(self.windows)):
                fb = getattr(self, f"fb{i}")
                target = log_mel(self.spec(ref, i), fb, self.floor, TINY)
                total = total + log_mel_l1(self.spec(est, i), fb, target, self.floor, TINY)
            return total / len(self.windows)


class CompressedStftLoss(nn.Module):
    """Phase-aware spectral loss: MSE between power-law-compressed complex STFTs, plus the same on
    the compressed magnitudes, averaged over resolutions (ESC; Braun & Tashev's compressed loss).

    For each ``(window, hop)`` (given at 16 kHz, scaled with the sample rate), with
    ``C(X) = X |X|^(c - 1)``::

        mean |C(X_est) - C(X_ref)|^2  +  mean (|X_est|^c - |X_ref|^c)^2

    The complex term sees phase where the signal is loud and, through the compression, still in
    quiet bands; the magnitude term keeps the level right where the phase is uncertain. Zero for
    identical signals, positive otherwise. Float32 with autocast off; magnitudes floored at
    ``floor`` before the power (the gradient of ``|X|^c`` is infinite at 0).
    """

    def __init__(self, sample_rate: int, resolutions: tuple[tuple[int, int], ...] = ((320, 80), (640, 160), (160, 40)),
                 power: float = 0.3, floor: float = 1e-5):
        super().__init__()
        self.power, self.floor = power, floor
        scale = sample_rate / 16000
        self.resolutions = [(int(w * scale), max(1, int(h * scale))) for w, h in resolutions]
        for i, (w, _) in enumerate(self.resolutions):
            self.register_buffer(f"window{i}", torch.hann_window(w), persistent=False)

    def forward(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """``est, ref [B, 1, T]`` -> scalar. Each resolution's term has its gradient written out
        (:func:`rotcodec.train.loss_terms.compressed_term`): the same values as autograd through
        the expression above, computed from ``|X|^2`` in real arithmetic."""
        with torch.autocast(device_type=est.device.type, enabled=False):
            est, ref = est.float().flatten(1), ref.float().flatten(1)
            total = est.new_zeros(())
            for i, (w, h) in enumerate(self.resolutions):
                a, b = (self._spec(x, w, h, getattr(self, f"window{i}")) for x in (est, ref))
                total = total + compressed_term(a, compressed_parts(b, self.power, self.floor), self.power, self.floor)
            return total / len(self.resolutions)

    @staticmethod
    def _spec(x: torch.Tensor, window: int, hop: int, w: torch.Tensor) -> torch.Tensor:
        return torch.stft(x, n_fft=window, hop_length=hop, win_length=window, window=w, center=True,
                          return_complex=True)


def waveform_l1(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return (est - ref).abs().mean()


def negative_si_sdr(est: torch.Tensor, ref: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Minus the mean scale-invariant SDR in dB over the batch, ``est, ref [B, 1, T]``.

    A phase-sensitive loss for runs without discriminators: the mel loss ignores phase, and the
    CPU-trained codecs here learned a plausible spectrum with an unrelated waveform (SI-SDR near
    -30 dB). Off by default (``loss.sisdr = 0``); its benefit is not yet measured.
    Float32 with autocast off; a silent reference pushes the estimate towards silence.
    """
    with torch.autocast(device_type=est.device.type, enabled=False):
        return -si_sdr_rows(ref.float().flatten(1), est.float().flatten(1), eps).mean()


# Least-squares GAN (HiFi-GAN / EnCodec-style): D pushes real to 1 and fake to 0.
def discriminator_adv_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Mean over discriminators of ``mean((1 - D(x))^2) + mean(D(G(z))^2)``."""
    terms = [(1 - r).pow(2).mean() + f.pow(2).mean() for r, f in zip(real_logits, fake_logits)]
    return torch.stack(terms).mean()


def generator_adv_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Mean over discriminators of ``mean((1 - D(G(z)))^2)``."""
    return torch.stack([(1 - f).pow(2).mean() for f in fake_logits]).mean()


def feature_matching_loss(real_feats: list[list[torch.Tensor]], fake_feats: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean L1 between the discriminators' feature maps of real (detached) and decoded audio,
    each layer normalised by the mean magnitude of its real features (EnCodec)."""
    terms = []
    for rs, fs in zip(real_feats, fake_feats):
        for r, f in zip(rs, fs):
            r = r.detach()
            terms.append((r - f).abs().mean() / r.abs().mean().clamp_min(1e-5))
    return torch.stack(terms).mean()
