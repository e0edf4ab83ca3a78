"""Push-based streaming: codes in, audio out as soon as it is final (and audio in, codes out).

:class:`StreamDecoder` is for playing a language model's output while it is generated: push
code frames as they come (one or many at a time), get back the samples that no later frame can
change. :class:`StreamEncoder` does the same for samples from a microphone-like source.

Both are built on the model's own context (:meth:`Codec.decoder_context_frames`,
:meth:`Codec.encoder_context_frames`): the output for frame ``i`` depends only on frames
``i - ctx .. i + ctx`` (zero-padded at the start, as in one-piece coding), so it is final once
frame ``i + ctx`` is in. Each call runs the model on the new frames plus ``ctx`` frames of
history and look-ahead and keeps only the final part, exactly like chunked coding
(:mod:`rotcodec.coding.chunks`), so:

* decoding: the concatenated output equals ``model.decode(codes)`` of all codes up to float
  rounding (~1e-6), however the frames were pushed;
* encoding: the concatenated codes equal ``model.encode(wav)``; in float32 a near-tie code can
  flip (rarely, see the chunks module notes), never with ``exact=True``.

Latency (algorithmic, on top of compute time): the decoder's audio for frame ``i`` is out once
frame ``i + ctx`` has been pushed, i.e. ``latency_ms = ctx * hop / sample_rate * 1000``; the
encoder emits frame ``i``'s code once ``(i + 1 + ctx) * hop`` samples are in, so a sample waits
at most ``(ctx + 1) * hop`` samples. ``min_frames`` > 1 trades latency for less recomputation
(each call recomputes ``2 * ctx`` frames of context).

Shapes: codes ``[C, n_q, f]`` (or ``[n_q, f]`` for one channel), audio ``[C, n]`` (or ``[n]``)
float32 at ``model.sample_rate``; channels are coded independently, as a batch.
"""

from __future__ import annotations

import copy

import torch

from rotcodec.errors import FormatError

__all__ = ["StreamDecoder", "StreamEncoder"]


def _check_min_frames(min_frames: int) -> int:
    if isinstance(min_frames, bool) or not isinstance(min_frames, int) or min_frames < 1:
        raise ValueError(f"min_frames must be a positive int, got {min_frames!r}")
    return min_frames


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


class StreamDecoder:
    """Decode code frames as they arrive.

    Args:
        model: a :class:`~rotcodec.Codec` in eval mode.
        min_frames: decode only when at least this many new frames are final (1: lowest latency).

    Usage::

        dec = StreamDecoder(model)
        for frame in lm_frames():           # [C, n_q, 1] (or [n_q, 1]) int codes, any n_q <= model.n_q
            play(dec.push(frame))           # [C, n] float32, n may be 0
        play(dec.flush())                   # the last ctx frames' audio

    ``n_q`` and ``C`` are fixed by the first push.
    """

    def __init__(self, model, min_frames: int = 1):
        self.model = model
        self.context = int(model.decoder_context_frames())
        self.min_frames = _check_min_frames(min_frames)
        self._codes: torch.Tensor | None = None  # [C, n_q, f]: frames from absolute index _start on
        self._start = 0  # absolute frame index of _codes[..., 0]
        self._received = 0  # frames pushed
        self._emitted = 0  # frames whose audio has been returned
        self._mono = False
        self._closed = False

    @property
    def latency_frames(self) -> int:
        """Frames of look-ahead: audio for frame ``i`` comes out when frame ``i + latency_frames`` is pushed."""
        return self.context + self.min_frames - 1

    @property
    def latency_ms(self) -> float:
        """:attr:`latency_frames` in milliseconds of audio."""
        return self.latency_frames * 1000.0 / self.model.frame_rate

    @property
    def frames_received(self) -> int:
        return self._received

    def push(self, codes: torch.Tensor) -> torch.Tensor:
        """Add frames ``[C, n_q, f]`` (or ``[n_q, f]``); return the newly final samples ``[C, n]``."""
        if self._closed:
            raise RuntimeError("push() after flush(): make a new StreamDecoder")
        codes = self._check(torch.as_tensor(codes))
        if self._codes is None:
            self._codes = codes
        else:
            self._codes = torch.cat([self._codes, codes], dim=-1)
        self._received += codes.shape[-1]
        final = self._received - self.context
        if final - self._emitted < self.min_frames:
            return self._empty()
        return self._decode_until(final)

    def flush(self, length: int | None = None) -> torch.Tensor:
        """Return the remaining samples; ``length`` (total samples of the whole stream) trims the end.

        After ``flush`` the decoder is closed.
        """
        self._closed = True
        if self._codes is None or self._emitted >= self._received:
            return self._empty()
        before = self._emitted * self.model.hop_length  # samples already returned
        out = self._decode_until(self._received)
        if length is not None:
            out = out[..., : max(0, length - before)]
        return out

    def _check(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.dtype.is_floating_point or codes.dtype == torch.bool or codes.is_complex():
            raise TypeError(f"codes must be integers, got {codes.dtype}")
        if self._codes is None:
            self._mono = codes.dim() == 2
        if codes.dim() == 2 and self._mono:
            codes = codes[None]
        if codes.dim() != 3:
            raise ValueError(f"codes must be [C, n_q, f] or [n_q, f], got shape {tuple(codes.shape)}")
        if self._codes is not None and codes.shape[:2] != self._codes.shape[:2]:
            raise ValueError(f"codes [C, n_q] = {tuple(codes.shape[:2])} differ from the first push's "
                             f"{tuple(self._codes.shape[:2])}")
        if not 1 <= codes.shape[1] <= self.model.n_q:
            raise ValueError(f"codes have {codes.shape[1]} stages, the model has {self.model.n_q}")
        k = self.model.config.quantizer.codebook_size
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= k):
            raise FormatError(f"code outside the codebook 0..{k - 1} "
                              f"(got {int(codes.min())}..{int(codes.max())})")
        return codes.long()

    def _empty(self) -> torch.Tensor:
        c = 1 if self._codes is None else self._codes.shape[0]
        out = torch.zeros(c, 0)
        return out[0] if self._mono else out

    @torch.inference_mode()
    def _decode_until(self, b: int) -> torch.Tensor:
        """Samples of frames ``[emitted, b)``: decode frames ``[emitted - ctx, min(b + ctx, received))``."""
        a, hop = self._emitted, self.model.hop_length
        lo = max(0, a - self.context)
        hi = min(self._received, b + self.context)
        window = self._codes[..., lo - self._start: hi - self._start]
        wav = self.model.decode(window.to(_device(self.model)))[:, 0]  # [C, (hi - lo) * hop]
        out = wav[:, (a - lo) * hop: (b - lo) * hop].float().cpu()
        self._emitted = b
        keep_from = max(0, b - self.context)  # history the next call needs
        self._codes = self._codes[..., keep_from - self._start:]
        self._start = keep_from
        return out[0] if self._mono else out


class StreamEncoder:
    """Encode samples as they arrive (a microphone-like source) into code frames.

    Args:
        model: a :class:`~rotcodec.Codec` in eval mode.
        n_q: stages to emit (default all).
        min_frames: encode only when at least this many new frames are final.
        exact: encode with a float64 copy of the model, so the codes never depend on how the
            samples were cut (see :mod:`rotcodec.coding.chunks`).

    Usage::

        enc = StreamEncoder(model, n_q=4)
        for block in microphone():          # [C, n] or [n] float32 at model.sample_rate, any n
            send(enc.push(block))           # codes [C, n_q, f], f may be 0
        send(enc.flush())                   # the last frames (the end is zero-padded to a frame)
    """

    def __init__(self, model, n_q: int | None = None, min_frames: int = 1, exact: bool = False):
        self.n_q = model.n_q if n_q is None else int(n_q)
        if not 1 <= self.n_q <= model.n_q:
            raise ValueError(f"n_q must be between 1 and {model.n_q}, got {n_q}")
        self.model = model
        self.context = int(model.encoder_context_frames())
        self.min_frames = _check_min_frames(min_frames)
        self.exact = bool(exact)
        self._encoder = copy.deepcopy(model).double().eval() if exact else model
        self._wav: torch.Tensor | None = None  # [C, n]: samples from absolute index _start on
        self._start = 0
        self._received = 0  # samples pushed
        self._emitted = 0  # frames returned
        self._mono = False
        self._closed = False

    @property
    def latency_frames(self) -> int:
        """Frames of look-ahead: frame ``i``'s code comes out once frame ``i + latency_frames`` is complete."""
        return self.context + self.min_frames - 1

    @property
    def latency_ms(self) -> float:
        """Worst-case wait of a sample for its code: one frame plus the look-ahead, in milliseconds."""
        return (self.latency_frames + 1) * 1000.0 / self.model.frame_rate

    def push(self, wav: torch.Tensor) -> torch.Tensor:
        """Add samples ``[C, n]`` (or ``[n]``); return the newly final codes ``[C, n_q, f]`` (int64)."""
        if self._closed:
            raise RuntimeError("push() after flush(): make a new StreamEncoder")
        wav = self._check(torch.as_tensor(wav))
        self._wav = wav if self._wav is None else torch.cat([self._wav, wav], dim=-1)
        self._received += wav.shape[-1]
        final = self._received // self.model.hop_length - self.context
        if final - self._emitted < self.min_frames:
            return self._empty()
        return self._encode_until(final)

    def flush(self) -> torch.Tensor:
        """Return the remaining codes (``ceil(samples / hop)`` frames in all); closes the encoder."""
        self._closed = True
        hop = self.model.hop_length
        total = -(-self._received // hop)
        if self._wav is None or self._emitted >= total:
            return self._empty()
        return self._encode_until(total)

    def _check(self, wav: torch.Tensor) -> torch.Tensor:
        if not wav.dtype.is_floating_point:
            raise TypeError(f"samples must be floats, got {wav.dtype}")
        if self._wav is None:
            self._mono = wav.dim() == 1
        if wav.dim() == 1 and self._mono:
            wav = wav[None]
        if wav.dim() != 2:
            raise ValueError(f"samples must be [C, n] or [n], got shape {tuple(wav.shape)}")
        if self._wav is not None and wav.shape[0] != self._wav.shape[0]:
            raise ValueError(f"{wav.shape[0]} channels, the first push had {self._wav.shape[0]}")
        return wav.float()

    def _empty(self) -> torch.Tensor:
        c = 1 if self._wav is None else self._wav.shape[0]
        out = torch.zeros(c, self.n_q, 0, dtype=torch.int64)
        return out[0] if self._mono else out

    @torch.inference_mode()
    def _encode_until(self, b: int) -> torch.Tensor:
        """Codes of frames ``[emitted, b)`` from samples of frames ``[emitted - ctx, b + ctx)`` (as held)."""
        a, hop = self._emitted, self.model.hop_length
        lo = max(0, a - self.context)
        hi = min(self._received, (b + self.context) * hop)
        window = self._wav[:, lo * hop - self._start: hi - self._start]
        dtype = torch.float64 if self.exact else torch.float32
        x = window.to(device=_device(self._encoder), dtype=dtype)[:, None]  # [C, 1, n]; encode pads the end
        codes = self._encoder.encode(x, self.n_q)[..., a - lo: b - lo].cpu()
        self._emitted = b
        keep_from = max(0, b - self.context) * hop
        self._wav = self._wav[:, keep_from - self._start:]
        self._start = keep_from
        return codes[0] if self._mono else codes
