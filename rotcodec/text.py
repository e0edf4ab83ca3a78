"""Wording shared by the messages and pages rotcodec prints (no imports: the command line's
``--help`` may use it without loading torch)."""

__all__ = ["counted"]


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and its noun, singular for exactly one: ``counted(1, "stage")`` is ``"1 stage"``,
    ``counted(12, "stage")`` is ``"12 stages"``; ``plural`` when not ``noun + "s"``."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
