"""STFT-domain encoder and decoder: ConvNeXt convolutions at the frame rate around an STFT/iSTFT.

Encoder: ``wav [B, 1, T] -> latent [B, latent_dim, T / hop]`` (T a multiple of hop).
    STFT (window ``stft_window``, hop ``stft_hop``, "same" framing: ``T / stft_hop`` frames) ->
    power-law-compressed complex spectrum ``X |X|^(c-1)`` as real and imaginary channels ->
    ``stft_stack`` consecutive frames stacked into one code frame -> 1x1 conv to ``width`` ->
    ConvNeXt blocks -> LayerNorm -> 1x1 conv to ``latent_dim``.
Decoder: ``latent [B, latent_dim, F] -> wav [B, 1, F * hop]``, the mirror image: 1x1 conv ->
    ConvNeXt blocks -> LayerNorm -> 1x1 conv to ``stft_stack`` frames of compressed complex
    spectrum -> decompressed (``Y |Y|^(1/c - 1)``) -> iSTFT.

Why the STFT domain: a decoder that outputs the complex spectrum is told the phase directly by
a loss on the compressed complex STFT, with no discriminator (ESC, Vocos); waveform decoders
trained without a GAN invent their own phase (``docs/bakeoff.csv``: of three families trained
25 CPU minutes each, only this one coded the waveform, SI-SDR +5.9 dB against -35). The
convolutions run at 50 frames/s instead of 16000 samples/s, which is what makes the family cheap
on a CPU.

Framing: the signal is zero-padded by ``(window - hop) / 2`` on both sides and framed without
centring, so frame ``j`` covers samples ``[j*hop - (window-hop)/2, j*hop + (window+hop)/2)`` and a
signal of ``T`` samples (a multiple of hop) has exactly ``T / hop`` frames. The window is a Hann
window sampled half a sample off its zeros, so ``torch.istft(center=False)`` can divide by the
window envelope everywhere (a standard Hann window is 0 at the first sample); at 75 % overlap
the squared window sums to a constant, and STFT -> iSTFT reconstructs the signal to float precision.

All normalisation is per time step (LayerNorm over channels) and every convolution zero-pads, so
a frame depends only on frames within the receptive field: chunked coding gives the same codes.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from rotcodec.config import CodecConfig

__all__ = ["StftEncoder", "StftDecoder", "ConvNeXtBlock", "analysis_window", "stft_frames", "istft_frames",
           "compress", "compress_parts", "decompress", "decompress_parts", "encoder_context_frames", "decoder_context_frames"]


def analysis_window(size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Hann window ``sin^2(pi (n + 1/2) / size)``: no zero sample, squared sum constant at hop size/4."""
    n = torch.arange(size, device=device, dtype=torch.float64)
    return torch.sin(math.pi * (n + 0.5) / size).pow(2).to(dtype)


def stft_frames(wav: torch.Tensor, window: int, hop: int) -> torch.Tensor:
    """``wav [B, T]`` (T a multiple of ``hop``) -> complex ``[B, window // 2 + 1, T / hop]``."""
    pad = (window - hop) // 2
    x = torch.nn.functional.pad(wav, (pad, pad))
    w = analysis_window(window, wav.device, wav.dtype)
    return torch.stft(x, n_fft=window, hop_length=hop, win_length=window, window=w, center=False,
                      return_complex=True)


def istft_frames(spec: torch.Tensor, window: int, hop: int) -> torch.Tensor:
    """Inverse of :func:`stft_frames`: complex ``[B, window // 2 + 1, N]`` -> ``wav [B, N * hop]``."""
    pad = (window - hop) // 2
    n = spec.shape[-1]
    real_dtype = spec.real.dtype
    w = analysis_window(window, spec.device, real_dtype)
    wav = torch.istft(spec, n_fft=window, hop_length=hop, win_length=window, window=w, center=False,
                      length=(n - 1) * hop + window)
    return wav[:, pad: pad + n * hop]


def compress(spec: torch.Tensor, power: float, floor: float = 1e-5) -> torch.Tensor:
    """Power-law compression of a complex spectrum: ``X |X|^(power - 1)`` (magnitude ``|X|^power``, same phase).

    The magnitude is floored at ``floor`` before the power (the gradient of ``|X|^0.3`` is infinite at 0).
    """
    return torch.complex(*compress_parts(spec.real, spec.imag, power, floor))


def compress_parts(re: torch.Tensor, im: torch.Tensor, power: float, floor: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`compress` of ``re + i im`` as real and imaginary parts, in real arithmetic: ``|X|^(power - 1)
    = (re^2 + im^2)^((power - 1) / 2)`` with ``|X|^2`` floored at ``floor^2``. The same values as with
    complex ``abs`` to float rounding, at a fraction of its cost on the CPU."""
    scale = (re * re + im * im).clamp_min(floor * floor).pow((power - 1.0) / 2)
    return re * scale, im * scale


def decompress(spec: torch.Tensor, power: float) -> torch.Tensor:
    """Inverse of :func:`compress`: ``Y |Y|^(1/power - 1)`` (a smooth function at 0 for power < 1)."""
    return torch.complex(*decompress_parts(spec.real, spec.imag, power))


def decompress_parts(re: torch.Tensor, im: torch.Tensor, power: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`decompress` of ``re + i im`` as real and imaginary parts, in real arithmetic:
    ``|Y|^(1/power - 1) = (re^2 + im^2)^((1/power - 1) / 2)``. The same values as complex ``abs``
    to float rounding, and about twice as fast forward and backward on the CPU (complex ``abs``
    and its ``sgn`` backward were the decoder's slowest element-wise steps)."""
    scale = (re * re + im * im).pow((1.0 / power - 1.0) / 2)
    return re * scale, im * scale


class ConvNeXtBlock(nn.Module):
    """``x + gamma * pw2(gelu(pw1(norm(dwconv(x)))))`` on ``[B, C, F]`` (ConvNeXt, as in Vocos).

    The depthwise conv (kernel ``k``, zero 'same' padding) mixes time; the pointwise pair (expansion
    ``expansion``) mixes channels. ``gamma`` (layer scale) starts small so each block starts near
    the identity, which keeps a deep stack trainable with a high learning rate.
    """

    def __init__(self, channels: int, kernel: int, expansion: int):
        super().__init__()
        self.dwconv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pw1 = nn.Linear(channels, expansion * channels)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(expansion * channels, channels)
        self.gamma = nn.Parameter(torch.full((channels,), 1.0 / 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)  # [B, F, C]
        y = self.pw2(self.act(self.pw1(self.norm(y)))) * self.gamma
        return x + y.transpose(1, 2)


class _Trunk(nn.Module):
    """1x1 conv in, ConvNeXt blocks, LayerNorm, 1x1 conv out: ``[B, c_in, F] -> [B, c_out, F]``."""

    def __init__(self, c_in: int, c_out: int, config: CodecConfig):
        super().__init__()
        self.proj_in = nn.Conv1d(c_in, config.width, 1)
        self.blocks = nn.Sequential(*(ConvNeXtBlock(config.width, config.kernel_size, config.expansion)
                                      for _ in range(config.blocks)))
        self.norm = nn.LayerNorm(config.width, eps=1e-6)
        self.proj_out = nn.Conv1d(config.width, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.proj_in(x))
        return self.proj_out(self.norm(x.transpose(1, 2)).transpose(1, 2))


def _bins(config: CodecConfig) -> int:
    return config.stft_window // 2 + 1


class StftEncoder(nn.Module):
    """``wav [B, 1, T] -> latent [B, latent_dim, T / hop_length]``; see the module notes."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        self.trunk = _Trunk(2 * _bins(config) * config.stft_stack, config.latent_dim, config)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        c = self.config
        spec = stft_frames(wav[:, 0].float(), c.stft_window, c.stft_hop)  # [B, K, N]
        feats = torch.cat(compress_parts(spec.real, spec.imag, c.compress), dim=1).to(wav.dtype)  # [B, 2K, N]
        # Stack S consecutive frames into one code frame: [B, 2K, F*S] -> [B, 2K*S, F].
        feats = rearrange(feats, "b c (f s) -> b (c s) f", s=c.stft_stack)
        return self.trunk(feats)


class StftDecoder(nn.Module):
    """``latent [B, latent_dim, F] -> wav [B, 1, F * hop_length]``; see the module notes."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        self.trunk = _Trunk(config.latent_dim, 2 * _bins(config) * config.stft_stack, config)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        c = self.config
        y = self.trunk(latent)  # [B, 2K*S, F]
        y = rearrange(y, "b (c s) f -> b c (f s)", s=c.stft_stack)  # unstack: [B, 2K, F*S]
        with torch.autocast(device_type=y.device.type, enabled=False):
            y = y.float()
            spec = torch.complex(*decompress_parts(y[:, : _bins(c)], y[:, _bins(c):], c.compress))
            wav = istft_frames(spec, c.stft_window, c.stft_hop)
        return wav[:, None]


def encoder_context_frames(config: CodecConfig) -> int:
    """Code frames of context a chunk needs on each side for its codes not to depend on the cut (+1 spare).

    A code frame's STFT frames reach ``(window - hop) / 2`` samples beyond it (at most one code frame
    for the presets); each ConvNeXt block's depthwise conv adds ``kernel_size // 2`` frames.
    """
    spill = math.ceil(((config.stft_window - config.stft_hop) // 2) / config.hop_length)
    return config.blocks * (config.kernel_size // 2) + spill + 1


def decoder_context_frames(config: CodecConfig) -> int:
    """Code frames of context a decoder chunk needs on each side (the same bound as the encoder's)."""
    return encoder_context_frames(config)
