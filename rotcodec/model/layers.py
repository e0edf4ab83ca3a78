"""Building blocks of the SEANet/DAC-style encoder and decoder.

Every convolution is weight-normalised (``torch.nn.utils.parametrizations.weight_norm``) and
zero-padded symmetrically, so a frame's value depends only on the samples around it: this is what
lets long files be coded in overlapping chunks with the same codes as in one piece.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = ["Snake", "activation", "wn_conv", "wn_conv_transpose", "ResidualUnit", "EncoderBlock", "DecoderBlock"]


class Snake(nn.Module):
    """Snake activation ``x + sin^2(alpha x) / alpha`` with a learned ``alpha`` per channel (DAC)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inv_alpha = (self.alpha + 1e-9).reciprocal()
        if torch.is_grad_enabled() and (x.requires_grad or self.alpha.requires_grad):
            return x + inv_alpha * torch.sin(self.alpha * x).pow(2)
        # Inference: the same arithmetic in place on one buffer (the activation is memory-bound and
        # ran as 5 full-size passes with 4 allocations: about a third of the CPU decode time).
        s = torch.sin(self.alpha * x)
        return s.square_().mul_(inv_alpha).add_(x)


def activation(kind: str, channels: int) -> nn.Module:
    """``"snake"`` (per-channel Snake) or ``"elu"``."""
    return Snake(channels) if kind == "snake" else nn.ELU()


def wn_conv(c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1) -> nn.Module:
    """Weight-normalised Conv1d; 'same' length for stride 1, ``T / stride`` for ``T`` a multiple of stride."""
    if stride == 1:
        padding = dilation * (kernel - 1) // 2
    else:
        padding = math.ceil(stride / 2)
    return weight_norm(nn.Conv1d(c_in, c_out, kernel, stride=stride, dilation=dilation, padding=padding))


def wn_conv_transpose(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Weight-normalised ConvTranspose1d with kernel ``2 * stride``: exactly ``T * stride`` samples out."""
    return weight_norm(nn.ConvTranspose1d(c_in, c_out, 2 * stride, stride=stride,
                                          padding=math.ceil(stride / 2), output_padding=stride % 2))


class ResidualUnit(nn.Module):
    """``x + conv1x1(act(conv_k,dilated(act(x))))``."""

    def __init__(self, channels: int, dilation: int, kernel: int, act: str):
        super().__init__()
        self.block = nn.Sequential(
            activation(act, channels),
            wn_conv(channels, channels, kernel, dilation=dilation),
            activation(act, channels),
            wn_conv(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class EncoderBlock(nn.Sequential):
    """Residual units at ``c_in`` channels, then a strided conv to ``c_out`` (downsample by ``stride``)."""

    def __init__(self, c_in: int, c_out: int, stride: int, dilations: tuple[int, ...], kernel: int, act: str):
        super().__init__(
            *(ResidualUnit(c_in, d, kernel, act) for d in dilations),
            activation(act, c_in),
            wn_conv(c_in, c_out, 2 * stride, stride=stride),
        )


class DecoderBlock(nn.Sequential):
    """A transposed conv from ``c_in`` to ``c_out`` (upsample by ``stride``), then residual units."""

    def __init__(self, c_in: int, c_out: int, stride: int, dilations: tuple[int, ...], kernel: int, act: str):
        super().__init__(
            activation(act, c_in),
            wn_conv_transpose(c_in, c_out, stride),
            *(ResidualUnit(c_out, d, kernel, act) for d in dilations),
        )
