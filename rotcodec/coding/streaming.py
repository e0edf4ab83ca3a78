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
* encoding: the concatenated codes equal ``model.encode`` of the conditioned signal
  (:func:`~rotcodec.coding.conditioning.condition`, as every encode path of rotcodec), or of the
  raw one with ``condition=False``; in float32 a near-tie code can flip (rarely, see the chunks
  module notes), never with ``exact=True``.

Gains: the encoder conditions its input per gain block of ``GAIN_FRAMES`` frames (DC removed,
level brought to -26 dBFS) with a :class:`~rotcodec.coding.conditioning.ConditionStream`, one
block behind, and hands out each block's int8 gain code (:meth:`StreamEncoder.take_gains`) no
later than the block's first code; a :class:`StreamDecoder` made with ``gain_frames`` divides
them out again. Codes without gains (a language model's) decode at the reference level.

Latency (algorithmic, on top of compute time): the decoder's audio for frame ``i`` is out once
frame ``i + ctx`` has been pushed, i.e. ``latency_ms = ctx * hop / sample_rate * 1000``; the
encoder emits frame ``i``'s code once ``(i + 1 + ctx) * hop`` samples are in, so a sample waits
at most ``(ctx + 1) * hop`` samples, plus up to one gain block (``GAIN_FRAMES - 1`` more frames)
when it conditions: a block is conditioned only once all of it is in. ``min_frames`` > 1 trades
latency for less recomputation (each call recomputes ``2 * ctx`` frames of context).

Shapes: codes ``[C, n_q, f]`` (or ``[n_q, f]`` for one channel), audio ``[C, n]`` (or ``[n]``)
float32 at ``model.sample_rate``, gain codes int8 ``[C, b]`` (or ``[b]``); channels are coded
independently, as a batch.
"""

from __future__ import annotations

import torch

from rotcodec.checks import is_int, positive_int
from rotcodec.coding.chunks import encoder_for, model_device
from rotcodec.coding.conditioning import GAIN_FRAMES, ConditionStream, apply_gains
from rotcodec.coding.pipeline import check_gains
from rotcodec.errors import FormatError
from rotcodec.quantize.codes import check_codes

__all__ = ["StreamDecoder", "StreamEncoder"]


def _check_min_frames(min_frames: int) -> int:
    positive_int("min_frames", min_frames)
    return min_frames


def _start_stream(stream, model, context: int, min_frames: int) -> None:
    """The state both streams begin with: the model, its ``context`` frames each side, the checked
    ``min_frames``, and empty counters (nothing pushed, nothing returned, not closed)."""
    stream.model = model
    stream.context = int(context)
    stream.min_frames = _check_min_frames(min_frames)
    stream._start = 0  # absolute index (frame or sample) of the first one held
    stream._received = 0
    stream._emitted = 0  # frames returned
    stream._mono = False  # the first push had no channel axis
    stream._closed = False


class StreamDecoder:
    """Decode code frames as they arrive.

    Args:
        model: a :class:`~rotcodec.Codec` in eval mode.
        min_frames: decode only when at least this many new frames are final (1: lowest latency).
        gain_frames: frames per gain block of the gains pushed with the codes
            (:attr:`StreamEncoder.gain_frames`); 0 (default): codes without gains, decoded at
            the model's reference level.

    Usage::

        dec = StreamDecoder(model)
        for frame in lm_frames():           # [C, n_q, 1] (or [n_q, 1]) int codes, any n_q <= model.n_q
            play(dec.push(frame))           # [C, n] float32, n may be 0
        play(dec.flush())                   # the last ctx frames' audio

        enc = StreamEncoder(model)          # a StreamEncoder's codes, at the level they came in at
        dec = StreamDecoder(model, gain_frames=enc.gain_frames)
        for block in microphone():
            codes = enc.push(block)
            play(dec.push(codes, enc.take_gains()))

    ``n_q`` and ``C`` are fixed by the first push. With ``gain_frames``, every frame's gain must
    have been pushed with or before it (a :class:`StreamEncoder` hands each gain out first).
    """

    def __init__(self, model, min_frames: int = 1, gain_frames: int = 0):
        _start_stream(self, model, model.decoder_context_frames(), min_frames)
        if not is_int(gain_frames) or gain_frames < 0:
            raise ValueError(f"gain_frames must be a non-negative int, got {gain_frames!r}")
        self.gain_frames = gain_frames
        self._gains: list[torch.Tensor] = []  # [C, b] int8 codes pushed so far
        self._gain_blocks = 0
        self._codes: torch.Tensor | None = None  # [C, n_q, f]: frames from absolute frame _start on
        # _received counts frames pushed; _emitted the frames whose audio has been returned.

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

    def push(self, codes: torch.Tensor, gains: torch.Tensor | None = None) -> torch.Tensor:
        """Add frames ``[C, n_q, f]`` (or ``[n_q, f]``) and the gain codes ``[C, b]`` (or ``[b]``) of
        the next ``b`` gain blocks, if any; return the newly final samples ``[C, n]``.

        Raises:
            TypeError / FormatError: codes that are not integers ``[C, n_q, f]`` in the codebook
                (:func:`~rotcodec.quantize.codes.check_codes`, as every decoding entry), or not of
                the first push's ``[C, n_q]``; gains outside the encoder's range.
            ValueError: gains without ``gain_frames``, or a frame whose gain has not been pushed.
        """
        if self._closed:
            raise RuntimeError("push() after flush(): make a new StreamDecoder")
        codes = self._check(codes)
        self._add_gains(gains, codes.shape[0])
        if self.gain_frames and self._received + codes.shape[-1] > self._gain_blocks * self.gain_frames:
            raise ValueError(f"frame {self._gain_blocks * self.gain_frames} pushed before the gain of its "
                             f"block ({self.gain_frames} frames a block); push each gain with or before its frames")
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

    def _add_gains(self, gains, channels: int) -> None:
        if gains is None:
            return
        g = torch.as_tensor(gains)
        if g.numel() == 0:
            return
        if not self.gain_frames:
            raise ValueError("gains pushed to a StreamDecoder made without gain_frames")
        g = g[None] if g.dim() == 1 else g
        if g.dim() != 2 or g.shape[0] != channels:
            raise ValueError(f"gains must be [C, b] with C = {channels}, got shape {tuple(g.shape)}")
        g = check_gains(g, channels, g.shape[-1], 1)  # dtype and range
        self._gains.append(g)
        self._gain_blocks += g.shape[-1]

    def _check(self, codes) -> torch.Tensor:
        codes = check_codes(codes, self.model.config.quantizer.codebook_size, self.model.n_q, dims=(2, 3),
                            min_frames=0, layout="[C, n_q, f] or [n_q, f]")
        if self._codes is None:
            self._mono = codes.dim() == 2
        if codes.dim() == 2 and self._mono:
            codes = codes[None]
        if codes.dim() != 3:
            raise FormatError(f"codes must be [C, n_q, f] after a first push of [C, n_q, f], got shape "
                              f"{tuple(codes.shape)}")
        if self._codes is not None and codes.shape[:2] != self._codes.shape[:2]:
            raise FormatError(f"codes [C, n_q] = {tuple(codes.shape[:2])} differ from the first push's "
                              f"{tuple(self._codes.shape[:2])}")
        return codes

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
        wav = self.model.decode(window.to(model_device(self.model)))[:, 0]  # [C, (hi - lo) * hop]
        out = wav[:, (a - lo) * hop: (b - lo) * hop].float().cpu()
        if self.gain_frames:
            if len(self._gains) > 1:
                self._gains = [torch.cat(self._gains, dim=-1)]
            out = apply_gains(out, self._gains[0], self.gain_frames * hop, a * hop, inverse=True)
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
        condition: condition the input per gain block of :attr:`gain_frames` frames, as
            ``rotcodec.compress`` does (:mod:`~rotcodec.coding.conditioning`); the gains come
            from :meth:`take_gains`. False: the raw model path, no gains, less latency.

    Usage::

        enc = StreamEncoder(model, n_q=4)
        for block in microphone():          # [C, n] or [n] float32 at model.sample_rate, any n
            send(enc.push(block), enc.take_gains())  # codes [C, n_q, f], f may be 0; gains [C, b]
        send(enc.flush(), enc.take_gains())  # the last frames (the end is zero-padded to a frame)
    """

    def __init__(self, model, n_q: int | None = None, min_frames: int = 1, exact: bool = False,
                 condition: bool = True):
        self.n_q = model.n_q if n_q is None else int(n_q)
        if not 1 <= self.n_q <= model.n_q:
            raise ValueError(f"n_q must be between 1 and {model.n_q}, got {n_q}")
        _start_stream(self, model, model.encoder_context_frames(), min_frames)
        self.exact = bool(exact)
        self.gain_frames = GAIN_FRAMES if condition else 0
        self._cond: ConditionStream | None = None  # made at the first push (it needs C)
        self._gains_taken = 0
        self._encoder, self._dtype = encoder_for(model, self.exact)
        self._wav: torch.Tensor | None = None  # [C, n]: conditioned samples from absolute sample _start on
        self._channels = 0
        # _received counts samples ready to encode (conditioned, when conditioning); _emitted frames.

    @property
    def latency_frames(self) -> int:
        """Frames of look-ahead, at most: frame ``i``'s code comes out once frame ``i + latency_frames``
        is complete. Conditioning adds up to one gain block less a frame (``gain_frames - 1``): the
        frames of a block are encoded only once the whole block is in and its gain known."""
        return self.context + self.min_frames - 1 + max(0, self.gain_frames - 1)

    @property
    def latency_ms(self) -> float:
        """Worst-case wait of a sample for its code: one frame plus the look-ahead, in milliseconds
        (with conditioning, about one gain block more than without)."""
        return (self.latency_frames + 1) * 1000.0 / self.model.frame_rate

    @property
    def gains(self) -> torch.Tensor | None:
        """Gain codes of every block conditioned so far, int8 ``[C, B]`` (``[B]`` for mono input);
        None without conditioning."""
        if not self.gain_frames:
            return None
        g = self._cond.gains if self._cond is not None else torch.zeros(max(1, self._channels), 0, dtype=torch.int8)
        return g[0] if self._mono else g

    def take_gains(self) -> torch.Tensor | None:
        """The gain codes not taken yet, int8 ``[C, b]`` (``[b]`` for mono input; b may be 0), in
        block order: each block's gain is out before (or with) the first code of its block.
        None without conditioning."""
        g = self.gains
        if g is None:
            return None
        new = g[..., self._gains_taken:]
        self._gains_taken = g.shape[-1]
        return new

    def push(self, wav: torch.Tensor) -> torch.Tensor:
        """Add samples ``[C, n]`` (or ``[n]``); return the newly final codes ``[C, n_q, f]`` (int64)."""
        if self._closed:
            raise RuntimeError("push() after flush(): make a new StreamEncoder")
        wav = self._check(torch.as_tensor(wav))
        if self.gain_frames:
            if self._cond is None:
                self._cond = ConditionStream(wav.shape[0], self.gain_frames * self.model.hop_length)
            wav = self._cond.push(wav)
        self._add(wav)
        final = self._received // self.model.hop_length - self.context
        if final - self._emitted < self.min_frames:
            return self._empty()
        return self._encode_until(final)

    def flush(self) -> torch.Tensor:
        """Return the remaining codes (``ceil(samples / hop)`` frames in all); closes the encoder."""
        self._closed = True
        if self._cond is not None:
            self._add(self._cond.flush())  # the last, short, gain block
        hop = self.model.hop_length
        total = -(-self._received // hop)
        if self._wav is None or self._emitted >= total:
            return self._empty()
        return self._encode_until(total)

    def _add(self, wav: torch.Tensor) -> None:
        if wav.shape[-1]:
            self._wav = wav if self._wav is None else torch.cat([self._wav, wav], dim=-1)
            self._received += wav.shape[-1]

    def _check(self, wav: torch.Tensor) -> torch.Tensor:
        if not wav.dtype.is_floating_point:
            raise TypeError(f"samples must be floats, got {wav.dtype}")
        first = not self._channels
        if first:
            self._mono = wav.dim() == 1
        if wav.dim() == 1 and self._mono:
            wav = wav[None]
        if wav.dim() != 2:
            raise ValueError(f"samples must be [C, n] or [n], got shape {tuple(wav.shape)}")
        if not first and wav.shape[0] != self._channels:
            raise ValueError(f"{wav.shape[0]} channels, the first push had {self._channels}")
        self._channels = wav.shape[0]
        return wav.float()

    def _empty(self) -> torch.Tensor:
        out = torch.zeros(max(1, self._channels), self.n_q, 0, dtype=torch.int64)
        return out[0] if self._mono else out

    @torch.inference_mode()
    def _encode_until(self, b: int) -> torch.Tensor:
        """Codes of frames ``[emitted, b)`` from samples of frames ``[emitted - ctx, b + ctx)`` (as held)."""
        a, hop = self._emitted, self.model.hop_length
        lo = max(0, a - self.context)
        hi = min(self._received, (b + self.context) * hop)
        window = self._wav[:, lo * hop - self._start: hi - self._start]
        x = window.to(device=model_device(self._encoder), dtype=self._dtype)[:, None]  # [C, 1, n]; encode pads the end
        codes = self._encoder.encode(x, self.n_q)[..., a - lo: b - lo].cpu()
        self._emitted = b
        keep_from = max(0, b - self.context) * hop
        self._wav = self._wav[:, keep_from - self._start:]
        self._start = keep_from
        return codes[0] if self._mono else codes
