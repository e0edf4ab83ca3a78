"""Discriminators: multi-period (HiFi-GAN) and multi-resolution complex-STFT (EnCodec's MS-STFT).

Each discriminator maps ``wav [B, 1, T]`` to ``(logits, features)``; :class:`Discriminators`
returns lists of both over all its members.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = ["PeriodDiscriminator", "STFTDiscriminator", "Discriminators"]


class PeriodDiscriminator(nn.Module):
    """Looks at the waveform folded into ``[T / period, period]`` with 2-D convs along time."""

    def __init__(self, period: int, width: int = 32):
        super().__init__()
        self.period = period
        chans = [1, width, 4 * width, 16 * width, 32 * width]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(chans[i], chans[i + 1], (5, 1), (3, 1), padding=(2, 0))) for i in range(len(chans) - 1))
        self.convs.append(weight_norm(nn.Conv2d(chans[-1], chans[-1], (5, 1), 1, padding=(2, 0))))
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        pad = (-t) % self.period
        x = F.pad(x, (0, pad), mode="reflect" if pad < t else "constant")
        x = x.view(b, c, -1, self.period)
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            feats.append(x)
        x = self.post(x)
        feats.append(x)
        return x.flatten(1), feats


class STFTDiscriminator(nn.Module):
    """2-D convs over the real and imaginary parts of one STFT resolution, ``[B, 2, frames, bins]``."""

    def __init__(self, n_fft: int, width: int = 32):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = nn.ModuleList([weight_norm(nn.Conv2d(2, width, (3, 9), padding=(1, 4)))])
        for dilation in (1, 2, 4):
            self.convs.append(weight_norm(nn.Conv2d(width, width, (3, 9), stride=(1, 2), dilation=(dilation, 1),
                                                    padding=(dilation, 4))))
        self.convs.append(weight_norm(nn.Conv2d(width, width, (3, 3), padding=(1, 1))))
        self.post = weight_norm(nn.Conv2d(width, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        with torch.autocast(device_type=x.device.type, enabled=False):
            spec = torch.stft(x.float().squeeze(1), self.n_fft, self.n_fft // 4, window=self.window, return_complex=True)
        z = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3).to(x.dtype)  # [B, 2, frames, bins]
        feats = []
        for conv in self.convs:
            z = F.leaky_relu(conv(z), 0.1)
            feats.append(z)
        z = self.post(z)
        feats.append(z)
        return z.flatten(1), feats


class Discriminators(nn.Module):
    """All discriminators; ``forward(wav)`` -> ``(logits list, features list of lists)``."""

    def __init__(self, sample_rate: int, width: int = 32, periods: tuple[int, ...] = (2, 3, 5, 7, 11),
                 ffts_16k: tuple[int, ...] = (512, 1024, 2048)):
        super().__init__()
        ffts = [int(n * sample_rate / 16000) for n in ffts_16k]
        self.members = nn.ModuleList([PeriodDiscriminator(p, width) for p in periods] +
                                     [STFTDiscriminator(n, width) for n in ffts])

    def forward(self, wav: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        logits, feats = [], []
        for d in self.members:
            lg, ft = d(wav)
            logits.append(lg)
            feats.append(ft)
        return logits, feats
