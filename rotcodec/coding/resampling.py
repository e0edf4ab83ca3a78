"""Resampling a stream of audio blocks, equal to resampling the whole signal at once.

torchaudio's sinc resampler reduces the rates by their gcd to ``orig' : new'`` and computes
output sample ``i * new' + phase`` from the input around sample ``i * orig'`` with a fixed
polyphase kernel. So a segment of input that starts at a multiple of ``orig'`` resamples to
output that starts at a whole output sample, with the same kernel phases as in the whole
signal. Each segment is resampled together with ``margin`` input samples of its neighbours on
each side (more than the kernel reaches), and the output of its own span is kept. At the ends
of the signal the margins are cut exactly where the whole signal ends, so the zero padding is
the same too. The result equals ``torchaudio.functional.resample`` of the whole signal up to
float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import torch

from rotcodec.errors import AudioError

__all__ = ["MAX_KERNEL_ELEMENTS", "check_resampling", "resampled_length", "resample_stream", "take"]

LOWPASS_FILTER_WIDTH = 6  # torchaudio's defaults (also used by rotcodec.io.resample)
ROLLOFF = 0.99
MAX_KERNEL_ELEMENTS = 1 << 24
"""Largest polyphase kernel accepted (64 MB of float32). Rates whose gcd is tiny (e.g. 44101 Hz
to 16000 Hz) would need gigabytes; they are refused with a message instead."""
SEGMENT_SECONDS = 10.0


def _reduced(orig_sr: int, new_sr: int) -> tuple[int, int, int]:
    """``(orig', new', width)``: the gcd-reduced rates and torchaudio's kernel half-width in input samples."""
    g = math.gcd(orig_sr, new_sr)
    o, n = orig_sr // g, new_sr // g
    width = math.ceil(LOWPASS_FILTER_WIDTH * o / (min(o, n) * ROLLOFF))
    return o, n, width


def resampled_length(length: int, orig_sr: int, new_sr: int) -> int:
    """Samples after resampling ``length`` samples: ``ceil(length * new_sr / orig_sr)`` (exact integers)."""
    if orig_sr == new_sr:
        return length
    o, n, _ = _reduced(orig_sr, new_sr)
    return -(-length * n // o)


def check_resampling(orig_sr: int, new_sr: int) -> None:
    """Raise :class:`AudioError` when resampling ``orig_sr`` -> ``new_sr`` needs an unreasonable kernel."""
    if orig_sr == new_sr:
        return
    o, n, width = _reduced(orig_sr, new_sr)
    elements = n * (2 * width + o)
    if elements > MAX_KERNEL_ELEMENTS:
        raise AudioError(
            f"cannot resample {orig_sr} Hz to {new_sr} Hz: the rates have too small a common divisor "
            f"(the filter would take {elements * 4 / 2**20:.0f} MB); convert the audio to a common "
            f"rate such as 16000, 44100 or 48000 Hz first")


def resample_stream(blocks: Iterable[torch.Tensor], length: int, orig_sr: int, new_sr: int,
                    segment: int | None = None) -> Iterator[torch.Tensor]:
    """Resample a stream of ``[C, n]`` float blocks, ``length`` samples in all, to ``new_sr``.

    Yields ``[C, m]`` float32 blocks, ``resampled_length(length, orig_sr, new_sr)`` samples in
    all, equal (up to float rounding) to ``torchaudio.functional.resample`` of the whole signal.
    Memory: a few segments of ``segment`` input samples (default about 10 s), whatever the length.

    Raises:
        AudioError: the rates need too large a kernel (:func:`check_resampling`).
        ValueError: the stream holds fewer than ``length`` samples.
    """
    if orig_sr == new_sr:
        yield from take(blocks, length)
        return
    check_resampling(orig_sr, new_sr)
    import torchaudio  # deferred: only resampling needs torchaudio

    o, n, width = _reduced(orig_sr, new_sr)
    kernel = torchaudio.transforms.Resample(orig_sr, new_sr, dtype=torch.float32)
    margin = o * (math.ceil((width + o) / o) + 1)  # input samples, a multiple of o
    if segment is None:
        segment = max(1, round(SEGMENT_SECONDS * orig_sr / o)) * o
    if segment < 1 or segment % o:
        raise ValueError(f"segment must be a positive multiple of {o}, got {segment}")

    parts: list[torch.Tensor] = []
    buf_start = buf_end = 0
    source = iter(take(blocks, length))
    for s in range(0, length, segment):
        e = min(s + segment, length)
        lo, hi = max(0, s - margin), min(length, e + margin)
        while buf_end < hi:
            block = next(source)
            parts.append(block)
            buf_end += block.shape[-1]
        if len(parts) > 1:
            parts = [torch.cat(parts, dim=-1)]
        x = parts[0][:, lo - buf_start: hi - buf_start]
        y = kernel(x.to(torch.float32))
        first = (s - lo) // o * n
        count = (e // o * n if e < length else resampled_length(length, orig_sr, new_sr)) - s // o * n
        yield y[:, first: first + count]
        keep = max(0, e - margin)  # the next segment starts at e and needs margin before it
        parts = [parts[0][:, keep - buf_start:]]
        buf_start = keep


def take(blocks: Iterable[torch.Tensor], length: int,
         short: Callable[[int], Exception] | None = None) -> Iterator[torch.Tensor]:
    """The first ``length`` samples of a stream of ``[C, n]`` blocks (no block is pulled once they
    are in); a stream that holds fewer raises ``short(got)``, by default a ValueError."""
    if length <= 0:
        return
    got = 0
    for block in blocks:
        block = block[:, : length - got]
        if block.shape[-1]:
            got += block.shape[-1]
            yield block
        if got >= length:
            return
    raise ValueError(f"audio stream ended after {got} samples, expected {length}") if short is None else short(got)
