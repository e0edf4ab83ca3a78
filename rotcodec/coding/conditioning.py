"""Input conditioning: what the encoder does to a signal before the model sees it, and undoes after.

People bring files at -50 dBFS, with a DC offset, or clipped hot; the model codes best at the level
it was trained at. So the encode path (compress, streaming, tokenize, eval) and the training
segments run the same two steps, per *gain block* of ``block`` samples at the model rate (blocks
start at sample 0 of the signal; the last one may be short):

1. remove DC: subtract the block's mean;
2. bring the block's RMS to ``TARGET_DB`` dBFS with one gain, quantized to ``STEP_DB`` and kept in
   ``[MIN_DB, MAX_DB]`` (digital silence and near-silence get at most ``MAX_DB``: a bounded boost,
   never a NaN), lowered where needed to keep the block's peak under ``PEAK``, and raised at most
   ``RISE_DB`` above the previous block's gain (it falls at once): pauses and silent tails stay near
   the level of the speech before them. Lifting every block to the target cost PESQ-WB 0.05 at
   6 kbps on unheard voices (the lifted noise floor spills into the speech around it; measured,
   see ``docs/level_sweep.json``).

The gains travel with the codes (one ``int8`` per channel and block: ``gain_db = q * STEP_DB``), so
decoding divides them out (:func:`apply_gains` with ``inverse=True``) and gives back the user's level;
the DC is not restored (as Opus's encoder, which high-passes its input). One byte per second of a
channel costs 8 bit/s, 0.5 % of 1.5 kbps.

Why per block and a mean, not one gain per file and a recursive high-pass: each block's gain and
offset depend on that block's samples (and the previous block's gain) only, so a stream (:class:`~rotcodec.StreamEncoder`) can
condition as it goes, one block behind, and whole, chunked, batched and streamed encodes condition
every sample identically (every block's statistics are taken by :func:`block_gain` on the same
samples in the same float64 arithmetic, whichever way the signal arrived). A constant offset is
removed exactly; a drifting one to within a block.

Shapes: ``wav [C, T]`` float (channels independent), gains ``[C, ceil(T / block)]`` int8 codes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch

__all__ = [
    "TARGET_DB", "STEP_DB", "MIN_DB", "MAX_DB", "PEAK", "RISE_DB", "GAIN_FRAMES",
    "block_gain", "condition", "apply_gains", "gains_db", "num_blocks", "ConditionStream",
]

TARGET_DB = -26.0
"""RMS level (dBFS) every block is brought to, and what training segments are conditioned to
(``benchmarks/level_sweep.py`` sweeps it: ``docs/level_sweep.json``)."""
STEP_DB = 0.5
MIN_DB = -40.0
MAX_DB = 30.0
PEAK = 0.99
RISE_DB = 3.0
"""The most a block's gain may rise above the previous block's (see :func:`block_gain`)."""
GAIN_FRAMES = 50
"""Frames per gain block by default: 1 s at 50 frames/s (the same span EnCodec's 48 kHz model scales)."""


def num_blocks(length: int, block: int) -> int:
    """Gain blocks of ``block`` samples that cover ``length`` samples."""
    return -(-int(length) // int(block))


def block_gain(x: torch.Tensor, previous: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The DC offset and quantized gain of one block ``x [C, n]`` (n >= 1), after the block
    ``previous`` (its gain codes ``[C]``; None for the first block).

    The gain may rise at most ``RISE_DB`` above the previous block's (it falls at once): a pause or
    the silent tail of a clip keeps about the level of the speech before it instead of being lifted
    to the target, which would lift the noise floor into the encoder and cost the speech around it.

    Returns ``(mean [C, 1] float64, q [C] int8)``, computed in float64 from exactly these samples.
    """
    x = x.detach().to("cpu", torch.float64).contiguous()
    mean = x.mean(dim=-1, keepdim=True)
    centred = x - mean
    rms = centred.pow(2).mean(dim=-1).sqrt()
    peak = centred.abs().amax(dim=-1)
    lo, hi = round(MIN_DB / STEP_DB), round(MAX_DB / STEP_DB)
    rise = round(RISE_DB / STEP_DB)
    before = [None] * len(rms) if previous is None else [int(v) for v in previous.tolist()]
    q = []
    for r, p, b in zip(rms.tolist(), peak.tolist(), before):
        want = TARGET_DB - 20 * math.log10(r) if r > 0 else MAX_DB
        k = min(max(round(want / STEP_DB), lo), hi)
        if b is not None:
            k = min(k, b + rise)
        if p > 0 and p * 10 ** (k * STEP_DB / 20) > PEAK:
            k = max(min(k, math.floor(20 * math.log10(PEAK / p) / STEP_DB)), lo)
        q.append(k)
    return mean, torch.tensor(q, dtype=torch.int8)


def gains_db(q: torch.Tensor) -> torch.Tensor:
    """Gain codes ``q`` (int8) in dB (float64)."""
    return q.to(torch.float64) * STEP_DB


def _scale(q: torch.Tensor, inverse: bool) -> torch.Tensor:
    db = gains_db(q)
    return torch.pow(10.0, (-db if inverse else db) / 20)


def condition(wav: torch.Tensor, block: int, first: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Condition a whole signal ``wav [C, T]``: returns ``(out [C, T] in wav's dtype, q [C, B] int8)``.

    ``first`` (training only) makes the first block that many samples long, so that a segment cut
    from the middle of a file meets a block edge where the encoder would put one."""
    if block < 1:
        raise ValueError(f"block must be a positive number of samples, got {block}")
    first = block if first is None or first < 1 else min(first, block)
    starts = [0] + list(range(first, wav.shape[-1], block))
    outs, qs = [], []
    for start, end in zip(starts, starts[1:] + [wav.shape[-1]]):
        if end <= start:
            continue
        out, q = _condition_block(wav[:, start:end], qs[-1] if qs else None)
        outs.append(out)
        qs.append(q)
    if not outs:
        return wav.clone(), torch.zeros(wav.shape[0], 0, dtype=torch.int8)
    return torch.cat(outs, dim=-1), torch.stack(qs, dim=-1)


def _condition_block(x: torch.Tensor, previous: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    mean, q = block_gain(x, previous)
    y = (x.detach().to("cpu", torch.float64) - mean) * _scale(q, False)[:, None]
    return y.to(x.dtype).to(x.device), q


def apply_gains(wav: torch.Tensor, q: torch.Tensor, block: int, offset: int = 0,
                inverse: bool = False) -> torch.Tensor:
    """Multiply ``wav [C, n]``, the samples from ``offset`` on, by the gains ``q [C, B]`` of their
    blocks (divide with ``inverse``: the decoder's side). Samples past the last block keep the last
    gain (a decoder may give a few more samples than were coded)."""
    n = wav.shape[-1]
    if n == 0 or q.shape[-1] == 0:
        return wav
    idx = torch.div(torch.arange(offset, offset + n), block, rounding_mode="floor").clamp_max(q.shape[-1] - 1)
    scale = _scale(q, inverse)[:, idx]
    return (wav.to(torch.float64) * scale.to(wav.device)).to(wav.dtype)


class ConditionStream:
    """Condition a stream of ``[C, n]`` blocks as it comes, one gain block behind.

    ``push(x)`` returns the conditioned samples of every gain block now complete (``[C, 0]`` when
    none is); ``flush()`` conditions what is left (the short last block). ``gains`` holds the codes
    of the blocks done so far, ``[C, B]``. The output equals :func:`condition` of the whole signal.
    """

    def __init__(self, channels: int, block: int):
        if block < 1:
            raise ValueError(f"block must be a positive number of samples, got {block}")
        self.channels, self.block = channels, block
        self._pending: list[torch.Tensor] = []
        self._held = 0
        self._gains: list[torch.Tensor] = []

    @property
    def gains(self) -> torch.Tensor:
        if not self._gains:
            return torch.zeros(self.channels, 0, dtype=torch.int8)
        return torch.stack(self._gains, dim=-1)

    def _last(self) -> torch.Tensor | None:
        return self._gains[-1] if self._gains else None

    def push(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1]:
            self._pending.append(x)
            self._held += x.shape[-1]
        done = []
        if self._held >= self.block:
            buf = torch.cat(self._pending, dim=-1)
            full = (buf.shape[-1] // self.block) * self.block
            for start in range(0, full, self.block):
                y, q = _condition_block(buf[:, start:start + self.block], self._last())
                done.append(y)
                self._gains.append(q)
            rest = buf[:, full:]
            self._pending, self._held = ([rest] if rest.shape[-1] else []), rest.shape[-1]
        if not done:
            return x.new_zeros(self.channels, 0)
        return torch.cat(done, dim=-1)

    def flush(self) -> torch.Tensor:
        if not self._held:
            return torch.zeros(self.channels, 0)
        buf = torch.cat(self._pending, dim=-1)
        self._pending, self._held = [], 0
        y, q = _condition_block(buf, self._last())
        self._gains.append(q)
        return y

    def stream(self, blocks: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Condition an iterable of blocks (all of it, flushed at the end)."""
        for x in blocks:
            y = self.push(x)
            if y.shape[-1]:
                yield y
        y = self.flush()
        if y.shape[-1]:
            yield y
