"""Chunked encoding and decoding of long signals in bounded memory.

A long signal is cut into chunks of ``chunk_frames`` frames, aligned to the hop length. Each
chunk is run through the model together with ``context`` frames of its neighbours on each side
(fewer at the ends of the signal, where one-piece coding sees the same zero padding), and only
its central frames (encoding) or samples (decoding) are kept. With ``context`` at least the
model's receptive field, the result does not depend on where the chunks are cut:

* encoding: the codes equal ``model.encode`` of the whole signal, for any ``chunk_frames``;
* decoding: the samples equal ``model.decode`` of all codes up to float rounding (~1e-6).

Codes at chunk seams: the latent of a frame must not change with the length of the chunk around
it, yet CPU and GPU kernels pick their algorithms (and so their rounding) by shape, and a rounding
difference of 1e-7 flips near-tie codes. In float32 (the default) a few codes in a thousand may
therefore differ between chunkings; either code of a near tie is, by definition, almost equally
close, so the decoded audio does not audibly change. ``exact=True`` encodes with a float64 copy
of the model instead: chunking then changes the latent by ~1e-16, which almost never survives the
rounding to float32 that the nearest-code search starts with, so the codes do not depend on the
chunk size; the price is about 2.5x the encoding time on CPU.

Shapes: audio ``[C, T]`` (channels coded independently as a batch of mono signals), codes
``[C, n_q, F]`` with ``F = ceil(T / hop)``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator

import torch

from rotcodec.checks import is_int, positive_int

__all__ = [
    "DEFAULT_CHUNK_FRAMES", "encoder_context_frames", "decoder_context_frames",
    "encode_stream", "decode_stream", "encode_chunked", "decode_chunked", "encode_batch", "model_device", "encoder_for",
]

DEFAULT_CHUNK_FRAMES = 250
"""Frames per chunk by default: 5 s at 50 frames/s. The encoder's im2col buffers take about
channels * kernel * 4 bytes per sample (8 in float64: 150 MB for a 5 s chunk of speech16k), so
larger chunks cost memory and gain little: the context overhead is already under 10 %."""


def encoder_context_frames(model) -> int:
    """Frames of context each encoder chunk of ``model`` needs on each side (the model says)."""
    return model.encoder_context_frames()


def decoder_context_frames(model) -> int:
    """Frames of context each decoder chunk of ``model`` needs on each side (the model says)."""
    return model.decoder_context_frames()


def _check_chunking(chunk_frames: int, context: int) -> None:
    positive_int("chunk_frames", chunk_frames)
    if not is_int(context) or context < 0:
        raise ValueError(f"context must be a non-negative int, got {context!r}")


class _Buffer:
    """Samples ``[C, n]`` of a stream kept from absolute offset ``start`` on; pulls blocks on demand."""

    def __init__(self, blocks: Iterable[torch.Tensor], total: int):
        self._blocks = iter(blocks)
        self._parts: list[torch.Tensor] = []
        self.start = 0  # absolute index of the first kept sample
        self.end = 0  # absolute index one past the last sample pulled
        self.total = total

    def fill_to(self, end: int) -> None:
        """Pull blocks until samples up to ``end`` (<= total) are held."""
        while self.end < end:
            block = next(self._blocks, None)
            if block is None:
                raise ValueError(f"audio stream ended after {self.end} samples, expected {self.total}")
            block = block[:, : self.total - self.end]  # never keep more than announced
            self._parts.append(block)
            self.end += block.shape[-1]

    def slice(self, lo: int, hi: int) -> torch.Tensor:
        """Samples ``[lo, hi)`` (absolute; within what is held) as one ``[C, hi - lo]`` tensor."""
        if len(self._parts) > 1:
            self._parts = [torch.cat(self._parts, dim=-1)]
        return self._parts[0][:, lo - self.start: hi - self.start]

    def drop_before(self, pos: int) -> None:
        """Forget samples before absolute ``pos``.

        Keeps a view (no copy, so a caller's single huge block is never copied); the memory of
        the dropped samples is freed at the next concatenation, which makes a new tensor.
        """
        if pos <= self.start:
            return
        self._parts = [self.slice(pos, self.end)]
        self.start = pos


def model_device(model: torch.nn.Module) -> torch.device:
    """The device ``model``'s weights are on (its first parameter's)."""
    return next(model.parameters()).device


def encoder_for(model, exact: bool) -> tuple[torch.nn.Module, torch.dtype]:
    """``(encoder, dtype of its input)``: ``model`` itself in float32, or with ``exact`` a float64
    copy in eval mode (codes that do not depend on the chunking; the caller's model is untouched)."""
    if exact:
        return copy.deepcopy(model).to(torch.float64).eval(), torch.float64
    return model, torch.float32


@torch.inference_mode()
def encode_stream(model, blocks: Iterable[torch.Tensor], length: int, n_q: int,
                  chunk_frames: int = DEFAULT_CHUNK_FRAMES, context: int | None = None,
                  exact: bool = False, beam: int | None = None) -> Iterator[torch.Tensor]:
    """Encode a stream of audio blocks chunk by chunk.

    Args:
        model: a :class:`~rotcodec.Codec` (eval mode).
        blocks: float32 ``[C, n]`` tensors at ``model.sample_rate``, any sizes, ``length``
            samples in all (extra samples are ignored; too few raise ``ValueError``).
        length: T, the total number of samples (>= 1).
        n_q: stages to keep.
        chunk_frames: frames per chunk.
        context: frames of context on each side; default :func:`encoder_context_frames`.
        exact: encode in float64, so that the codes do not depend on ``chunk_frames`` (slower;
            see the module notes).
        beam: code paths kept per frame (None: the model's setting).

    Yields:
        codes ``[C, n_q, f]`` (int64, CPU), in order, ``ceil(length / hop)`` frames in all.
    """
    context = encoder_context_frames(model) if context is None else context
    _check_chunking(chunk_frames, context)
    if length < 1:
        raise ValueError("cannot encode an empty signal")
    hop = model.hop_length
    frames = math.ceil(length / hop)
    device = model_device(model)
    encoder, dtype = encoder_for(model, exact)
    buf = _Buffer(blocks, length)
    for a in range(0, frames, chunk_frames):
        b = min(a + chunk_frames, frames)
        a0 = max(0, a - context)
        lo, hi = a0 * hop, min(length, (b + context) * hop)
        buf.fill_to(hi)
        wav = buf.slice(lo, hi).to(device)[:, None]  # [C, 1, n]; the model pads the last chunk
        codes = encoder.encode(wav.to(dtype), n_q, beam=beam)
        yield codes[..., a - a0: b - a0].cpu()
        del wav, codes
        buf.drop_before(max(0, b - context) * hop)


@torch.inference_mode()
def decode_stream(model, codes: torch.Tensor, length: int,
                  chunk_frames: int = DEFAULT_CHUNK_FRAMES, context: int | None = None,
                  ) -> Iterator[torch.Tensor]:
    """Decode codes ``[C, n, F]`` chunk by chunk.

    Yields float32 ``[C, n]`` CPU blocks at ``model.sample_rate``, ``length`` samples in all
    (``length <= F * hop``), equal to ``model.decode(codes, length)`` up to float rounding.
    """
    context = decoder_context_frames(model) if context is None else context
    _check_chunking(chunk_frames, context)
    if codes.dim() != 3:
        raise ValueError(f"codes must be [C, n_q, F], got shape {tuple(codes.shape)}")
    hop = model.hop_length
    frames = codes.shape[-1]
    if not 0 <= length <= frames * hop:
        raise ValueError(f"length {length} does not fit {frames} frames of {hop} samples")
    device = model_device(model)
    for a in range(0, frames, chunk_frames):
        if a * hop >= length:
            break
        b = min(a + chunk_frames, frames)
        a0, b0 = max(0, a - context), min(frames, b + context)
        wav = model.decode(codes[..., a0:b0].to(device))[:, 0]  # [C, (b0 - a0) * hop]
        start = (a - a0) * hop
        yield wav[:, start: start + min(b * hop, length) - a * hop].float().cpu()
        del wav


def encode_chunked(model, wav: torch.Tensor, n_q: int | None = None,
                   chunk_frames: int = DEFAULT_CHUNK_FRAMES, exact: bool = False) -> torch.Tensor:
    """``wav [C, T]`` at the model rate -> codes ``[C, n_q, ceil(T / hop)]``, chunk by chunk."""
    n_q = model.n_q if n_q is None else n_q
    parts = list(encode_stream(model, [wav], wav.shape[-1], n_q, chunk_frames, exact=exact))
    return torch.cat(parts, dim=-1)


def decode_chunked(model, codes: torch.Tensor, length: int,
                   chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> torch.Tensor:
    """codes ``[C, n, F]`` -> ``wav [C, length]`` at the model rate, chunk by chunk."""
    return torch.cat(list(decode_stream(model, codes, length, chunk_frames)), dim=-1)


@torch.inference_mode()
def encode_batch(model, wavs: list[torch.Tensor], n_q: int | None = None,
                 exact: bool = False) -> list[torch.Tensor]:
    """Encode signals of different lengths as batches: ``[C_i, T_i]`` each -> codes ``[C_i, n_q, F_i]``.

    Zero-padding short signals to the longest would change their last frames: the model pads
    each layer's input at the signal's end, and padded samples have nonzero activations. So the
    batch is coded in two calls: all signals zero-padded to the longest, keeping each one's
    frames farther than the encoder context from its end; then each signal's last ``2 * ctx``
    frames (or all of it, when shorter) as its own end, grouped by length. The codes equal those
    of coding each signal alone (up to float32 near-ties, as with chunks; never with
    ``exact=True``). Each batch is one chunk: for long signals use :func:`encode_chunked`.
    """
    if not wavs:
        return []
    n_q = model.n_q if n_q is None else n_q
    if any(w.dim() != 2 or w.shape[-1] < 1 for w in wavs):
        raise ValueError(f"each signal must be [C, T] with T >= 1, got {[tuple(w.shape) for w in wavs]}")
    encoder, dtype = encoder_for(model, exact)
    device, hop = model_device(model), model.hop_length
    ctx = encoder_context_frames(model)

    def run(rows: list[torch.Tensor]) -> list[torch.Tensor]:
        """Encode ``[C_i, n]`` rows zero-padded to the longest; one ``[C_i, n_q, F]`` per row."""
        longest = max(r.shape[-1] for r in rows)
        x = torch.cat([torch.nn.functional.pad(r.to(dtype), (0, longest - r.shape[-1])) for r in rows])
        codes = encoder.encode(x[:, None].to(device), n_q).cpu()
        return list(codes.split([r.shape[0] for r in rows]))

    frames = [math.ceil(w.shape[-1] / hop) for w in wavs]
    out = [c[..., :f] for c, f in zip(run(wavs), frames)]  # right except the last ctx frames
    tails: dict[int, list[int]] = {}  # window frames -> signals
    for i, f in enumerate(frames):
        tails.setdefault(min(f, 2 * ctx), []).append(i)
    for size, items in tails.items():
        ends = run([wavs[i][:, (frames[i] - size) * hop:] for i in items])
        for i, codes in zip(items, ends):
            keep = min(frames[i], ctx)
            out[i][..., frames[i] - keep:] = codes[..., size - keep:]
    return out
