"""A minimal progress bar on stderr (no dependency), shown only for long inputs."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["LONG_INPUT_SECONDS", "Progress"]

LONG_INPUT_SECONDS = 30.0
"""Inputs shorter than this (in seconds of audio) never show a bar."""


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
        if self._drawn and now - self._last < 0.1 and done < self.total:
            return
        self._last, self._drawn = now, True
        frac = min(1.0, max(0.0, done / self.total))
        bar = "#" * int(frac * 30)
        self.stream.write(f"\r{self.label} [{bar:.<30}] {frac:4.0%} {done:7.1f}/{self.total:.1f} s")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (only if one was drawn)."""
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
