"""kbps -> stages: the one conversion every command and call uses.

``kbps`` always means the bitrate of the whole file or signal, all its channels together, as
Opus counts it (``opusenc --bitrate``): stereo at 3 kbps is 1.5 kbps a channel. A model codes one
channel at a time, so a file of ``C`` channels coded with ``n`` stages a channel takes
``C * model.bitrate(n)``; :func:`stages_for_kbps` gives the largest ``n`` whose total does not
exceed ``kbps``. A bare model (``Codec.n_q_for_kbps``) codes one mono signal: ``channels=1``.

No torch here: the command line checks bitrates with it before loading a model.
"""

from __future__ import annotations

import math
import warnings

from rotcodec.checks import is_number
from rotcodec.text import counted

__all__ = ["BitrateCapped", "check_kbps", "stages_and_cap", "stages_for_kbps", "nominal_kbps"]

_EPS = 1e-9  # 1.5 kbps of 0.5 kbps stages is 3 stages, whatever the float rounding


class BitrateCapped(UserWarning):
    """A bitrate above the model's maximum was asked for: the audio is coded with every stage."""


def check_kbps(kbps) -> float | None:
    """``kbps`` as a float (None stays None: all stages), or ValueError unless a positive number."""
    if kbps is None:
        return None
    if not is_number(kbps) or not math.isfinite(kbps) or kbps <= 0:
        raise ValueError(f"kbps must be a positive number, got {kbps!r}")
    return float(kbps)


def stages_and_cap(model, kbps: float | None, channels: int = 1) -> tuple[int, bool]:
    """``(stages per channel, capped)`` for a ``channels``-channel signal of ``kbps`` in all;
    ``capped``: ``kbps`` is above the model's maximum, so every stage. ``model`` needs ``n_q`` and
    ``bitrate(n)`` (bits per second of one channel with ``n`` stages).

    Raises:
        ValueError: ``kbps`` not a positive number, or below one stage on every channel.
    """
    kbps = check_kbps(kbps)
    if kbps is None:
        return model.n_q, False
    per_stage, top = model.bitrate(1) * channels / 1000, model.bitrate() * channels / 1000
    if kbps > top * (1 + _EPS):
        return model.n_q, True
    n_q = min(model.n_q, math.floor(kbps / per_stage + _EPS))
    if n_q < 1:
        what = f"one stage ({per_stage:g} kbps)" if channels == 1 else \
            f"one stage a channel ({per_stage:g} kbps in all)"
        where = "" if channels == 1 else f" over {channels} channels"
        raise ValueError(f"{kbps:g} kbps{where} is below {what} for this model; "
                         f"choose between {per_stage:g} and {top:g} kbps")
    return n_q, False


def stages_for_kbps(model, kbps: float | None, channels: int = 1, warn: bool = True) -> int:
    """The stages each channel is coded with when a signal of ``channels`` channels may take
    ``kbps`` in all: the most whose bitrate, times ``channels``, does not exceed ``kbps``; None:
    all stages.

    Above the model's maximum (every stage on every channel) it returns all stages and, with
    ``warn``, warns (:class:`BitrateCapped`, naming the cap; Python shows a warning once per
    place it comes from).

    Raises:
        ValueError: ``kbps`` not a positive number, or below one stage on every channel.
    """
    n_q, capped = stages_and_cap(model, kbps, channels)
    if capped and warn:
        top = model.bitrate() * channels / 1000
        warnings.warn(f"{kbps:g} kbps is above this model's maximum for {counted(channels, 'channel')} "
                      f"({top:g} kbps, all {counted(n_q, 'stage')}): capped at {top:g} kbps",
                      BitrateCapped, stacklevel=3)
    return n_q


def nominal_kbps(model, n_q: int, channels: int = 1) -> float:
    """The nominal bitrate in kbps of ``channels`` channels coded with ``n_q`` stages each."""
    return model.bitrate(n_q) * channels / 1000
