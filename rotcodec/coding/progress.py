"""Minimal progress bars on stderr (no dependency): :class:`Progress` in seconds of audio, shown
only for long inputs, and :class:`ProgressLine` in files (tokenize, detokenize). Training has its
own, time-based line (:mod:`rotcodec.train.progress`: elapsed and remaining mm:ss, loss)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["LONG_INPUT_SECONDS", "Progress", "ProgressLine"]

LONG_INPUT_SECONDS = 30.0
"""Inputs shorter than this (in seconds of audio) never show a bar."""
BAR_WIDTH = 30
REDRAW_SECONDS = 0.1  # at most 10 redraws a second


def _bar(frac: float) -> str:
    """``[#####.....]`` for ``frac`` (0 to 1) done."""
    filled = "#" * int(BAR_WIDTH * min(1.0, max(0.0, frac)))
    return f"[{filled:.<{BAR_WIDTH}}]"


class Progress:
    """``[#####.....]  50%  30.0/60.0 s`` on one stderr line, redrawn at most 10 times a second.

    Args:
        label: what is being done (``"compress"``).
        total: seconds of audio in all.
        enabled: False makes every method a no-op (also when ``total`` is short).
        stream: where to draw (stderr by default).
    """

    def __init__(self, label: str, total: float, enabled: bool = True, stream: TextIO | None = None):
        self.label, self.total = label, max(float(total), 1e-9)
        self.enabled = bool(enabled) and total >= LONG_INPUT_SECONDS
        self.stream = sys.stderr if stream is None else stream
        self._last = 0.0
        self._drawn = False

    def update(self, done: float) -> None:
        """Draw the bar for ``done`` seconds of audio processed."""
        if not self.enabled:
            return
        now = time.monotonic()
        if self._drawn and now - self._last < REDRAW_SECONDS and done < self.total:
            return
        self._last, self._drawn = now, True
        frac = min(1.0, max(0.0, done / self.total))
        self.stream.write(f"\r{self.label} {_bar(frac)} {frac:4.0%} {done:7.1f}/{self.total:.1f} s")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (only if one was drawn)."""
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


class ProgressLine:
    """``tokenize [###...] 120/300 files  3.2 files/s  0.011 h audio/s`` on one stderr line, redrawn
    at most 10 times a second; called as ``bar(done, total, audio_seconds)``."""

    def __init__(self, label: str, stream: TextIO | None = None):
        self.label, self.stream = label, sys.stderr if stream is None else stream
        self.start = time.monotonic()
        self._last = 0.0

    def __call__(self, done: int, total: int, audio_seconds: float) -> None:
        now = time.monotonic()
        if now - self._last < REDRAW_SECONDS and done < total:
            return
        self._last = now
        wall = max(now - self.start, 1e-9)
        self.stream.write(f"\r{self.label} {_bar(done / max(total, 1))} {done}/{total} files  "
                          f"{done / wall:.2f} files/s  {audio_seconds / 3600 / wall:.4f} h audio/s")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
