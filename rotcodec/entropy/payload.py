"""Codes ``[C, n_q, F]`` <-> an entropy-coded payload, with a context model and the range coder.

Symbols are coded frame by frame, stage by stage, channel by channel (order ``[F, n_q, C]``), each
under the integer table the context model gives it (:mod:`rotcodec.entropy.model`). The encoder
computes all tables at once, a block of frames at a time; the decoder rebuilds them one frame
and stage at a time from the codes it has decoded (:class:`~rotcodec.entropy.model.SequentialTables`),
so it can hand out frames as they come (:func:`iter_decode`). Both give the same integers, so
the same bytes decode to the same codes on every machine.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rotcodec.entropy.coder import MAX_STRIPPED, RangeDecoder, RangeEncoder
from rotcodec.entropy.model import IntContextModel, SequentialTables
from rotcodec.errors import FormatError

__all__ = ["BLOCK_FRAMES", "encode_codes", "decode_codes", "iter_decode", "max_payload_size"]

BLOCK_FRAMES = 128
"""Frames whose tables the encoder computes at once (bounds its memory, ``C * n_q * 128 * K`` ints)."""


def max_payload_size(num_codes: int) -> int:
    """Upper bound on the payload of ``num_codes`` codes: table totals are at most ``2**32``, so a
    code takes at most 32 bits, plus the byte that ends the stream (8 allowed)."""
    return 4 * num_codes + 8


def encode_codes(model: IntContextModel, codes: np.ndarray) -> bytes:
    """Entropy-code integer codes ``[C, n_q, F]`` (values ``0 .. K-1``) with ``model``."""
    codes = np.asarray(codes)
    if codes.ndim != 3 or codes.dtype.kind not in "iu":
        raise ValueError(f"codes must be an integer array [C, n_q, F], got {codes.dtype} {codes.shape}")
    C, n_q, F = codes.shape
    model.check_codes_fit(n_q, model.codebook_size)
    if codes.size and (codes.min() < 0 or codes.max() >= model.codebook_size):
        raise ValueError(f"codes outside 0..{model.codebook_size - 1}")
    codes = codes.astype(np.int64)
    enc = RangeEncoder()
    for f0 in range(0, F, BLOCK_FRAMES):
        block = codes[:, :, f0:f0 + BLOCK_FRAMES]
        tables = model.tables(codes, f0, f0 + BLOCK_FRAMES)  # [C, n_q, f, K]
        cum = np.cumsum(tables, axis=-1)  # [C, n_q, f, K], inclusive
        own = np.take_along_axis(tables, block[..., None], axis=-1)[..., 0]
        high = np.take_along_axis(cum, block[..., None], axis=-1)[..., 0]
        total = cum[..., -1]
        # frame-major order [f, n_q, C], as the decoder reads them
        for lo_, fr, tot in zip((high - own).transpose(2, 1, 0).ravel().tolist(),
                                own.transpose(2, 1, 0).ravel().tolist(),
                                total.transpose(2, 1, 0).ravel().tolist()):
            enc.encode(lo_, fr, tot)
    return enc.finish()


def iter_decode(model: IntContextModel, data: bytes, channels: int, n_q: int, frames: int,
                ) -> Iterator[np.ndarray]:
    """Decode ``frames`` frames of ``[C, n_q]`` codes from ``data``, yielding each frame (int64
    ``[C, n_q]``) as soon as it is decoded. FormatError when ``data`` is not what
    :func:`encode_codes` wrote for that many codes (checked symbol by symbol and at the end)."""
    model.check_codes_fit(n_q, model.codebook_size)
    count = channels * n_q * frames
    if len(data) > max_payload_size(count):
        raise FormatError(f"corrupt entropy-coded payload: {len(data)} bytes for {count} codes")
    # Each code costs at least min_code_bits, and the decoder reads at most 15 bytes past the
    # data (RangeDecoder): more codes than that can hold is a corrupt header, refused before any
    # work (twice the bound, so float rounding cannot refuse a valid file).
    if count * model.min_code_bits > 16 * (len(data) + 8 + MAX_STRIPPED):
        raise FormatError(f"corrupt entropy-coded payload: {len(data)} bytes cannot hold {count} codes")
    dec = RangeDecoder(data)
    st = SequentialTables(model, channels, n_q)
    for _ in range(frames):
        yield st.decode_frame(dec.decode)
    dec.finish()


def decode_codes(model: IntContextModel, data: bytes, channels: int, n_q: int, frames: int) -> np.ndarray:
    """Decode a whole payload to codes ``[C, n_q, F]`` (int64); FormatError as :func:`iter_decode`."""
    out = np.empty((channels, n_q, frames), dtype=np.int64)
    for f, frame in enumerate(iter_decode(model, data, channels, n_q, frames)):
        out[:, :, f] = frame
    return out
