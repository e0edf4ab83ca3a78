"""SEANet/DAC-style convolutional encoder and decoder.

Encoder: ``wav [B, 1, T] -> latent [B, latent_dim, T / hop]`` (T a multiple of hop).
Decoder: ``latent [B, latent_dim, F] -> wav [B, 1, F * hop]``.
"""

from __future__ import annotations

import math

from torch import nn

from rotcodec.config import CodecConfig
from rotcodec.model.layers import DecoderBlock, EncoderBlock, activation, wn_conv

__all__ = ["Encoder", "Decoder", "receptive_field", "encoder_context_frames", "decoder_context_frames"]


class Encoder(nn.Sequential):
    """Conv in, one :class:`EncoderBlock` per stride (channels doubling), activation, conv to the latent."""

    def __init__(self, config: CodecConfig):
        c, k, act = config.channels, config.kernel_size, config.activation
        layers: list[nn.Module] = [wn_conv(1, c, k)]
        for stride in config.strides:
            layers.append(EncoderBlock(c, 2 * c, stride, config.dilations, k, act))
            c *= 2
        layers += [activation(act, c), wn_conv(c, config.latent_dim, 3)]
        super().__init__(*layers)


class Decoder(nn.Sequential):
    """Conv in, one :class:`DecoderBlock` per stride (reversed, channels halving), conv out, tanh."""

    def __init__(self, config: CodecConfig):
        c, k, act = config.decoder_channels, config.kernel_size, config.activation
        layers: list[nn.Module] = [wn_conv(config.latent_dim, c, k)]
        for stride in reversed(config.strides):
            layers.append(DecoderBlock(c, c // 2, stride, config.dilations, k, act))
            c //= 2
        layers += [activation(act, c), wn_conv(c, 1, k), nn.Tanh()]
        super().__init__(*layers)


def receptive_field(config: CodecConfig) -> int:
    """Half-width, in samples, of the encoder's receptive field around one frame (an upper bound).

    Chunked encoding gives each chunk at least this much context on both sides, so that its codes
    do not depend on where the chunks are cut.
    """
    k = config.kernel_size
    scale = 1  # samples per step at the current depth
    half = (k - 1) // 2
    for stride in config.strides:
        half += sum(d * (k - 1) // 2 for d in config.dilations) * scale
        half += (2 * stride) * scale  # the strided conv (kernel 2*stride)
        scale *= stride
    half += 1 * scale  # final kernel-3 conv
    return half


def encoder_context_frames(config: CodecConfig) -> int:
    """Frames of context each encoder chunk needs on each side: the receptive field, rounded up, + 1."""
    return math.ceil(receptive_field(config) / config.hop_length) + 1


def decoder_context_frames(config: CodecConfig) -> int:
    """Frames of context each decoder chunk needs on each side (an upper bound, + 1 for safety).

    The decoder mirrors the encoder: a kernel-``k`` conv at the frame rate, then per stride a
    transposed conv (kernel ``2 * stride``: an output sample sees at most 3 input steps on either
    side) and residual units with dilated kernel-``k`` convs, then a kernel-``k`` conv at the
    sample rate. Added up in output samples, then converted to frames.
    """
    k = config.kernel_size
    step = config.hop_length  # output samples per step at the current depth
    half = (k - 1) // 2 * step
    for stride in reversed(config.strides):
        half += 3 * step  # transposed conv, measured in its input steps
        step //= stride
        half += sum(d * (k - 1) // 2 for d in config.dilations) * step
    half += (k - 1) // 2  # final conv at the sample rate
    return math.ceil(half / config.hop_length) + 1
