"""Bit packing of integer codes: each code as exactly ``bits`` bits, MSB first.

This is the lower of the two file-format layers (the container in ``container.py`` is the
upper one). It is pure numpy, vectorised (no Python loop per code) and imports nothing from
the model.

Layout: the codes, flattened in C order, are written one after the other, each as ``bits``
bits with the most significant bit first; the bit stream is cut into bytes MSB first and the
last byte is padded with zero bits. So ``n`` codes take ``ceil(n * bits / 8)`` bytes.

Memory: packing and unpacking ``n`` codes allocates a few ``uint8`` arrays of ``n * 16`` (or
``n * 8`` for ``bits <= 8``) elements and never an ``int64`` array of ``n * bits`` elements,
so a few million codes stay well under 100 MB.
"""

from __future__ import annotations

import numpy as np

from rotcodec.errors import FormatError

__all__ = ["MAX_BITS", "pack_codes", "packed_size", "unpack_codes"]

MAX_BITS = 16
"""Largest supported code width in bits (codebooks of up to 65536 entries)."""


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"bits must be an int, got {type(bits).__name__}")
    bits = int(bits)
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be in 1..{MAX_BITS}, got {bits}")
    return bits


def _word_width(bits: int) -> int:
    """Width in bits of the unsigned word a code is staged in (8 or 16)."""
    return 8 if bits <= 8 else 16


def packed_size(count: int, bits: int) -> int:
    """Number of bytes that ``count`` codes of ``bits`` bits occupy: ``ceil(count*bits/8)``."""
    bits = _check_bits(bits)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
        raise TypeError(f"count must be an int, got {type(count).__name__}")
    count = int(count)
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return (count * bits + 7) // 8


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Pack integer codes into bytes, ``bits`` bits per code, MSB first.

    Args:
        codes: integer array of any shape; flattened in C order. Each value must be in
            ``0 .. 2**bits - 1``.
        bits: code width, 1..16.

    Returns:
        ``packed_size(codes.size, bits)`` bytes; the last byte is zero-padded.

    Raises:
        ValueError: ``bits`` out of range, a non-integer array, or a code that is negative
            or ``>= 2**bits``.
    """
    bits = _check_bits(bits)
    codes = np.asarray(codes)
    if codes.dtype.kind not in "iu":
        raise ValueError(f"codes must be an integer array, got dtype {codes.dtype}")
    flat = codes.reshape(-1)
    if flat.size == 0:
        return b""
    lo, hi = int(flat.min()), int(flat.max())
    if lo < 0 or hi >= (1 << bits):
        bad = lo if lo < 0 else hi
        raise ValueError(f"code {bad} does not fit in {bits} bits (allowed 0..{(1 << bits) - 1})")
    width = _word_width(bits)
    # Big-endian words, so that unpackbits yields each code's bits MSB first.
    words = flat.astype(">u2" if width == 16 else np.uint8)
    word_bits = np.unpackbits(words.view(np.uint8)).reshape(flat.size, width)
    # Keep the low ``bits`` bits of each word; the high ones are zero (range checked above).
    code_bits = word_bits[:, width - bits:]
    return np.packbits(code_bits.reshape(-1)).tobytes()


def unpack_codes(data: bytes, bits: int, count: int) -> np.ndarray:
    """Unpack ``count`` codes of ``bits`` bits each from ``data`` (inverse of :func:`pack_codes`).

    Args:
        data: exactly ``packed_size(count, bits)`` bytes (bytes, bytearray or memoryview).
        bits: code width, 1..16.
        count: number of codes.

    Returns:
        ``int64`` array of shape ``[count]``, values in ``0 .. 2**bits - 1``.

    Raises:
        FormatError: ``len(data)`` is not ``packed_size(count, bits)`` or the padding bits of
            the last byte are not zero.
        ValueError: ``bits`` or ``count`` out of range.
    """
    expected = packed_size(count, bits)
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size != expected:
        raise FormatError(
            f"bit-packed payload has {buf.size} bytes, expected {expected} "
            f"for {count} codes of {bits} bits"
        )
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    pad = expected * 8 - count * bits
    if pad and int(buf[-1]) & ((1 << pad) - 1):
        raise FormatError("bit-packed payload has non-zero padding bits (corrupt data)")
    width = _word_width(bits)
    stream = np.unpackbits(buf, count=count * bits)
    # Re-stage each code in a zero-extended word of ``width`` bits, then pack back to bytes.
    word_bits = np.zeros((count, width), dtype=np.uint8)
    word_bits[:, width - bits:] = stream.reshape(count, bits)
    del stream
    words = np.packbits(word_bits, axis=1)
    del word_bits
    if width == 16:
        values = words.reshape(-1).view(">u2")
    else:
        values = words.reshape(-1)
    return values.astype(np.int64)
