"""The codec: encoder -> residual VQ -> decoder, with bitrate bookkeeping.

Shapes: ``wav [B, 1, T]`` (mono, at ``sample_rate``), ``codes [B, n_q, F]`` with
``F = ceil(T / hop)``; the waveform is zero-padded on the right to ``F * hop`` and the decoder's
output trimmed back to ``T``, so output length equals input length for any ``T``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import NamedTuple

import torch
from torch import nn

from rotcodec.bitrate import stages_for_kbps
from rotcodec.config import CodecConfig
from rotcodec.files import atomic_torch_save
from rotcodec.model import seanet, stft
from rotcodec.quantize.rvq import ResidualVQ

__all__ = ["Codec", "CodecOutput", "MODEL_FORMAT", "MODEL_VERSION", "FAMILIES"]

FAMILIES = {
    # arch: (encoder class, decoder class, module with encoder/decoder_context_frames(config))
    "seanet": (seanet.Encoder, seanet.Decoder, seanet),
    "stft": (stft.StftEncoder, stft.StftDecoder, stft),
}

MODEL_FORMAT = "rotcodec-model"
MODEL_VERSION = 1


class CodecOutput(NamedTuple):
    """Training forward result: ``wav [B, 1, T]``, ``codes [B, n_q, F]``, named ``losses`` and
    ``metrics`` (``vq/...``), and ``n_active [B]`` (stages used per item, quantizer dropout)."""

    wav: torch.Tensor
    codes: torch.Tensor
    losses: dict[str, torch.Tensor]
    metrics: dict[str, torch.Tensor]
    n_active: torch.Tensor


class Codec(nn.Module):
    """A neural audio codec built from ``config``; parts may be passed in (tests, experiments).

    Args:
        config: the :class:`CodecConfig` (stored with the weights by :meth:`save`).
        encoder, quantizer, decoder: optional replacements for the parts built from ``config``
            (e.g. tiny or identity modules); they must keep the shapes documented above, and a
            quantizer's forward takes ``(z, n_q, metrics)`` as :class:`ResidualVQ`'s does.
    """

    def __init__(self, config: CodecConfig, encoder: nn.Module | None = None,
                 quantizer: nn.Module | None = None, decoder: nn.Module | None = None):
        super().__init__()
        self.config = config
        enc_cls, dec_cls, _ = FAMILIES[config.arch]
        self.encoder = encoder if encoder is not None else enc_cls(config)
        self.quantizer = quantizer if quantizer is not None else ResidualVQ(config.latent_dim, config.quantizer)
        self.decoder = decoder if decoder is not None else dec_cls(config)

    # ----- bookkeeping ---------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def frame_rate(self) -> float:
        """Frames (code vectors) per second: ``sample_rate / hop_length``."""
        return self.config.frame_rate

    @property
    def n_q(self) -> int:
        """The number of stages (the highest bitrate)."""
        return self.config.quantizer.n_q

    def encoder_context_frames(self) -> int:
        """Frames of context an encoder chunk needs on each side so that its codes do not depend on
        where a long signal is cut (the family's receptive field, rounded up, plus a spare frame)."""
        return FAMILIES[self.config.arch][2].encoder_context_frames(self.config)

    def decoder_context_frames(self) -> int:
        """Frames of context a decoder chunk needs on each side (an upper bound of the receptive field)."""
        return FAMILIES[self.config.arch][2].decoder_context_frames(self.config)

    def bitrate(self, n_q: int | None = None) -> float:
        """Bits per second with ``n_q`` stages (all when None): ``frame_rate * n_q * log2(K)``."""
        n_q = self.n_q if n_q is None else n_q
        if not 1 <= n_q <= self.n_q:
            raise ValueError(f"n_q must be between 1 and {self.n_q}, got {n_q}")
        return self.frame_rate * n_q * self.config.quantizer.bits

    def n_q_for_kbps(self, kbps: float | None) -> int:
        """The largest ``n_q`` whose bitrate does not exceed ``kbps`` (all stages for None): the
        model codes one mono signal, so this is :func:`rotcodec.bitrate.stages_for_kbps` with one
        channel (above the maximum: every stage, with a ``BitrateCapped`` warning)."""
        return stages_for_kbps(self, kbps, channels=1)

    def set_beam(self, beam: int) -> "Codec":
        """Set the model's encoder search, ``config.quantizer.beam``: code paths kept per frame
        (1: greedy residual coding); returns the model. A thin setter of the config, which is
        where the setting lives (a saved model file keeps it) and where encoding reads it
        (:meth:`ResidualVQ.encode`, whose ``beam`` argument overrides it for one call); the
        quantizer shares the model's quantizer config. Weights and decoding do not change."""
        self.config = replace(self.config, quantizer=replace(self.config.quantizer, beam=int(beam)))  # checked there
        if isinstance(self.quantizer, ResidualVQ):
            self.quantizer.config = self.config.quantizer
        return self

    # ----- coding ----------------------------------------------------------------------------
    def _check_wav(self, wav: torch.Tensor) -> None:
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise ValueError(f"wav must be [B, 1, T] (mono), got shape {tuple(wav.shape)}")
        if wav.shape[-1] < 1:
            raise ValueError("wav has no samples")

    def _pad(self, wav: torch.Tensor) -> torch.Tensor:
        """Right-pad ``[B, 1, T]`` with zeros to a multiple of the hop length."""
        extra = (-wav.shape[-1]) % self.hop_length
        return torch.nn.functional.pad(wav, (0, extra)) if extra else wav

    @torch.no_grad()
    def encode(self, wav: torch.Tensor, n_q: int | None = None, beam: int | None = None) -> torch.Tensor:
        """``wav [B, 1, T]`` -> codes ``[B, n_q, ceil(T / hop)]`` (int64), searched with ``beam``
        code paths per frame (default: ``config.quantizer.beam``, the model's own; 1: greedy)."""
        self._check_wav(wav)
        z = self.encoder(self._pad(wav))
        return self.quantizer.encode(z, n_q) if beam is None else self.quantizer.encode(z, n_q, beam=beam)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """codes ``[B, n, F]`` (any ``1 <= n <= n_q``) -> ``wav [B, 1, length or F * hop]``."""
        wav = self.decoder(self.quantizer.decode(codes))
        return wav if length is None else wav[..., :length]

    def forward(self, wav: torch.Tensor, n_q: int | None = None, metrics: bool = True) -> CodecOutput:
        """Training/eval forward of ``wav [B, 1, T]``; output ``wav`` has the same length ``T``.

        In training mode quantizer dropout draws the stages per item; in eval mode the result's
        ``wav`` equals ``decode(encode(wav, n_q), T)``. ``metrics=False`` leaves the quantizer's
        per-stage diagnostics out (steps that do not log them).

        Under autocast (bf16 training) the encoder and decoder run in bf16 and the quantizer in float32
        with autocast off (its projections, lookup, estimator and codebook updates: DESIGN's rule).
        """
        self._check_wav(wav)
        length = wav.shape[-1]
        z = self.encoder(self._pad(wav))
        with torch.autocast(device_type=z.device.type, enabled=False):
            res = self.quantizer(z.float() if z.dtype in (torch.float16, torch.bfloat16) else z, n_q, metrics)
        out = self.decoder(res.quantized)[..., :length]
        return CodecOutput(out, res.codes, res.losses, res.metrics, res.n_active)

    def model_file(self, half: bool = False) -> dict:
        """The content of a model file: format tag, config and weights (no pickled objects).

        ``half`` stores floating-point tensors as float16 (half the size); loading casts them back
        to float32.
        """
        state = self.state_dict()
        if half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        return {"format": MODEL_FORMAT, "version": MODEL_VERSION, "config": self.config.to_dict(),
                "state_dict": state}

    def save(self, path: str | os.PathLike, half: bool = False) -> None:
        """Write an inference model file (config + weights) that :func:`rotcodec.load_model` reads.

        Written to a temporary file and renamed, so an interrupted save never leaves a partial file.
        """
        atomic_torch_save(self.model_file(half), path)
