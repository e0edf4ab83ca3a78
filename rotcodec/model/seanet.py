"""SEANet/DAC-style convolutional encoder and decoder.

Encoder: ``wav [B, 1, T] -> latent [B, latent_dim, T / hop]`` (T a multiple of hop).
Decoder: ``latent [B, latent_dim, F] -> wav [B, 1, F * hop]``.
"""

from __future__ import annotations

import torch
from torch import nn

from rotcodec.config import CodecConfig
from rotcodec.model.layers import DecoderBlock, EncoderBlock, activation, wn_conv

__all__ = ["Encoder", "Decoder", "receptive_field"]


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
