"""Training progress on stderr: a line every few seconds with the step, elapsed and remaining time,
the rate and the loss.

In a terminal one line is redrawn in place (``\\r``) every :data:`TERMINAL_SECONDS`; through a pipe or
into a file, where ``\\r`` piles up into one endless line, a whole line is written every
:data:`PIPE_SECONDS`. The log file (``log.jsonl``) is separate and keeps its ``train.log_every``.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

__all__ = ["PIPE_SECONDS", "TERMINAL_SECONDS", "ProgressPrinter", "clock", "progress_line", "remaining_seconds"]

TERMINAL_SECONDS = 2.0
PIPE_SECONDS = 15.0  # a log read later needs fewer lines than a terminal watched now
BAR_WIDTH = 24


def clock(seconds: float) -> str:
    """``seconds`` as ``mm:ss`` (minutes not wrapped at 60: ``125:00`` is 2 h 5 min); ``--:--`` when
    unknown (None, infinite or NaN)."""
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    minutes, secs = divmod(int(max(seconds, 0.0)), 60)
    return f"{minutes:02d}:{secs:02d}"


def remaining_seconds(step: int, total: int, rate: float, time_left: float) -> float | None:
    """Seconds until the run stops: the steps left at ``rate`` steps/s when ``total`` (``train.steps``)
    stops it, ``time_left`` (of ``train.max_minutes``, infinite without a limit) when that does,
    the sooner of the two when both may; None when neither is known yet."""
    by_steps = (total - step) / rate if total and rate > 0 else math.inf
    left = min(by_steps, max(time_left, 0.0))
    return None if math.isinf(left) else left


def progress_line(step: int, total: int, elapsed_s: float, remaining_s: float | None, rate: float,
                  loss: float, mel: float | None = None) -> str:
    """One status line (no newline), e.g.
    ``[######..................] step 250/1000  01:40 elapsed  05:00 left  2.50 steps/s  loss 3.120 mel 0.812``.

    ``total``: ``train.steps`` (0: no step limit, the count alone); ``remaining_s`` from
    :func:`remaining_seconds` (None: unknown, no bar); ``loss`` the total training loss and ``mel``
    its mel part when given. The bar is the share of the run's time gone.
    """
    where = f"step {step}/{total}" if total else f"step {step}"
    bar = ""
    if remaining_s is not None:
        done = elapsed_s / max(elapsed_s + remaining_s, 1e-9)
        filled = int(BAR_WIDTH * min(max(done, 0.0), 1.0))
        bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
    text = (f"{bar}{where}  {clock(elapsed_s)} elapsed  {clock(remaining_s)} left  "
            f"{rate:.2f} steps/s  loss {loss:.3f}")
    return text if mel is None else f"{text} mel {mel:.3f}"


class ProgressPrinter:
    """Writes lines (:func:`progress_line`) to ``stream`` at most once per interval: redrawn in place
    in a terminal, whole lines otherwise.

    Args:
        stream: where to write (stderr by default).
        terminal: whether ``stream`` is a terminal (None: ask ``stream.isatty()``).
        interval: seconds between lines (default :data:`TERMINAL_SECONDS` or :data:`PIPE_SECONDS`).
        now: the clock (``time.monotonic``; tests pass their own).
    """

    def __init__(self, stream: TextIO | None = None, terminal: bool | None = None, interval: float | None = None,
                 now=time.monotonic):
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.terminal = bool(isatty and isatty()) if terminal is None else terminal
        self.interval = (TERMINAL_SECONDS if self.terminal else PIPE_SECONDS) if interval is None else interval
        self.now = now
        self._last = -math.inf
        self._width = 0  # of the line shown in the terminal, to blank what a shorter one leaves

    def due(self) -> bool:
        """Whether a line is due (the interval has passed since the last)."""
        return self.now() - self._last >= self.interval

    def show(self, line: str, force: bool = False) -> None:
        """Write ``line`` if due, or now when ``force`` (the first and last steps)."""
        if not (force or self.due()):
            return
        self._last = self.now()
        if self.terminal:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line of its own (validation scores), below the redrawn line in a terminal."""
        self.close()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the redrawn line, if one is shown."""
        if self.terminal and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
