"""A 64-bit range coder over integer frequency tables, in Python integers.

The coder of LZMA (Subbotin's range coder with carry propagation through a cached byte), widened
from 32 to 64 bits: ``low`` holds 64 bits plus a carry, ``range`` stays in ``[2**56, 2**64)``
and one byte leaves ``low`` whenever ``range`` falls under ``2**56``. A symbol with frequency
``freq`` at cumulative offset ``cum`` of a table summing to ``total`` (``1 <= total <= 2**32``,
every coded symbol's ``freq >= 1``) narrows the range to ``(range // total) * freq``, so the
coded size is within ``2**-24`` relative of ``-log2(freq / total)`` bits per symbol, plus
at most one byte at the end.

Everything is integer arithmetic on Python ints: the bytes depend only on the integer tables,
never on the CPU. The decoder reads past the end of its data as zero bytes and checks, for each
symbol, that the code value lies inside the range (a valid stream always does): garbage gives a
:class:`~rotcodec.errors.FormatError` or some symbols, never a hang or another exception, and it
does a bounded amount of work per symbol.
"""

from __future__ import annotations

import numpy as np

from rotcodec.errors import FormatError

__all__ = ["MAX_STRIPPED", "MAX_TOTAL", "RangeEncoder", "RangeDecoder"]

_BITS = 64
_TOP = 1 << (_BITS - 8)  # renormalise when range drops under this
_MASK = (1 << _BITS) - 1
_FULL = _MASK  # the initial range
MAX_TOTAL = 1 << 32
"""Largest table total (sum of frequencies) the coder accepts."""
MAX_STRIPPED = 8
"""Trailing zero bytes the encoder drops at most (the decoder reads zeros in their place); the
decoder reads at most ``7 + MAX_STRIPPED`` bytes past the end, so its work is bounded by its data."""


class RangeEncoder:
    """Encode symbols one at a time: ``enc.encode(cum, freq, total)``, then ``enc.finish()`` -> bytes."""

    def __init__(self) -> None:
        self.low, self.range = 0, _FULL
        self.cache, self.cache_size = 0, 1  # LZMA's first output byte is the (zero) cache
        self.out = bytearray()

    def _shift_low(self) -> None:
        low = self.low
        if low < 0xFF << (_BITS - 8) or low > _MASK:  # the top byte is final (or a carry came)
            carry = low >> _BITS
            self.out.append((self.cache + carry) & 0xFF)
            self.out.extend(bytes([(0xFF + carry) & 0xFF]) * (self.cache_size - 1))
            self.cache_size = 0
            self.cache = (low >> (_BITS - 8)) & 0xFF
        self.cache_size += 1
        self.low = (low << 8) & _MASK

    def encode(self, cum: int, freq: int, total: int) -> None:
        """Code the symbol occupying ``[cum, cum + freq)`` of ``[0, total)``."""
        if not (0 < freq and 0 <= cum and cum + freq <= total <= MAX_TOTAL):
            raise ValueError(f"bad frequency interval [{cum}, {cum + freq}) of {total}")
        r = self.range // total
        self.low += r * cum
        self.range = r * freq
        while self.range < _TOP:
            self.range <<= 8
            self._shift_low()

    def finish(self) -> bytes:
        """Flush and return the coded bytes (the encoder cannot be used afterwards).

        The final value is the multiple of ``2**56`` inside ``[low, low + range)`` (one exists,
        as ``range >= 2**56``), so only its top byte is written; up to ``MAX_STRIPPED`` trailing
        zero bytes are dropped too, as the decoder reads zeros past the end."""
        step = 1 << (_BITS - 8)
        self.low = -(-self.low // step) * step
        self._shift_low()
        self._shift_low()
        out = bytes(self.out[1:])  # the first byte is always 0 (the initial cache)
        zeros = len(out) - len(out.rstrip(b"\0"))
        self.out = bytearray()
        return out[: len(out) - min(zeros, MAX_STRIPPED)]


class RangeDecoder:
    """Decode what :class:`RangeEncoder` wrote, given the same tables in the same order.

    ``dec.decode(cumulative)`` takes the table as the inclusive cumulative sums of the
    frequencies, ``[f0, f0 + f1, ..., total]`` (length ``K``), and returns the symbol;
    :meth:`finish` checks that the stream ended where the encoder's did.
    """

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.pos = 0
        self._end = len(self.data) + 7 + MAX_STRIPPED  # a valid stream is read no further
        self._padded = self.data + bytes(7 + MAX_STRIPPED)  # the zeros read past the end
        self.range = _FULL
        self.code = 0
        for _ in range(_BITS // 8):
            self.code = (self.code << 8) | self._byte()

    def _byte(self) -> int:
        pos = self.pos
        self.pos = pos + 1
        if pos >= self._end:
            raise FormatError("corrupt entropy-coded payload: it ends before its codes")
        return self._padded[pos]

    def decode(self, cumulative: np.ndarray) -> int:
        """The next symbol under the table ``cumulative`` (inclusive sums ``[..., total]``, int64 numpy)."""
        total = cumulative.item(-1)
        r = self.range // total
        code = self.code
        value = code // r
        if value >= total:
            raise FormatError("corrupt entropy-coded payload: code value outside the range")
        symbol = int(cumulative.searchsorted(value, "right"))
        lo = cumulative.item(symbol - 1) if symbol else 0
        code -= r * lo
        rng = r * (cumulative.item(symbol) - lo)
        if rng < _TOP:
            pos, padded = self.pos, self._padded
            while rng < _TOP:
                if pos >= self._end:
                    self.pos = pos + 1
                    raise FormatError("corrupt entropy-coded payload: it ends before its codes")
                rng <<= 8
                code = ((code << 8) | padded[pos]) & _MASK
                pos += 1
            self.pos = pos
        self.code, self.range = code, rng
        return symbol

    def finish(self) -> None:
        """FormatError unless the data ended where the encoder's stream ends: the encoder writes
        one byte per renormalisation and one at the end, the decoder reads 8 ahead, and the
        encoder drops up to ``MAX_STRIPPED`` trailing zeros (so its last byte is 0 only when it
        dropped that many)."""
        stripped = self.pos - 7 - len(self.data)
        if stripped < 0 or (self.data and self.data[-1] == 0 and stripped != MAX_STRIPPED):
            raise FormatError(f"corrupt entropy-coded payload: {len(self.data)} bytes, more than the "
                              f"codes took ({max(0, self.pos - 7)})")
