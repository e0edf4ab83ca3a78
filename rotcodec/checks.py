"""Checks of the plain values that public calls take: counts, rates, sizes (standard library only,
so the command line may use them without loading torch)."""

from __future__ import annotations

import numbers

__all__ = ["is_int", "is_number", "positive_int"]


def is_int(value, numpy: bool = False) -> bool:
    """``value`` is an ``int`` and not a bool (``True`` is an int to Python, never a count here);
    ``numpy``: numpy's integer scalars count too (``np.int64(3)``, an index read from an array)."""
    kinds = numbers.Integral if numpy else int
    return isinstance(value, kinds) and not isinstance(value, bool)


def is_number(value) -> bool:
    """``value`` is a real number (int, float, numpy's) and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(name: str, value, numpy: bool = False) -> int:
    """``value`` as an int >= 1, or ``ValueError("NAME must be a positive int, got VALUE")``;
    ``numpy`` as in :func:`is_int`."""
    if not is_int(value, numpy) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)
