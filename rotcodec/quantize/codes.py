"""The one check of codes handed to a decoder, whoever hands them in.

Every entry that takes codes from outside (``rotcodec.decode``, :class:`~rotcodec.StreamDecoder`,
``Codec.decode`` / :meth:`ResidualVQ.decode`, the ``.rcq`` reader) calls :func:`check_codes`,
so the same mistake raises the same error everywhere:

- ``TypeError``: not an array or tensor, or not integers (floats, bools, complex);
- :class:`~rotcodec.errors.FormatError` (a ``ValueError``): the wrong number of axes, a number
  of stages outside ``1..n_q``, fewer frames than required, a code outside ``0..K-1``.
"""

from __future__ import annotations

import numpy as np
import torch

from rotcodec.errors import FormatError
from rotcodec.text import counted

__all__ = ["check_codes"]


def check_codes(codes, codebook_size: int, n_q: int, dims: tuple[int, ...] = (3,), min_frames: int = 1,
                layout: str = "[C, n_q, F]") -> torch.Tensor:
    """``codes`` (numpy array or tensor) as an int64 tensor, checked; raises as the module says.

    Args:
        codebook_size: K, codes must lie in ``0..K-1``.
        n_q: the most stages allowed (the model's); the stage axis is the second to last.
        dims: the numbers of axes accepted (``(2, 3)``: ``[n_q, F]`` or ``[C, n_q, F]``).
        min_frames: the fewest frames (last axis) accepted.
        layout: the shape named in the messages.
    """
    if isinstance(codes, np.ndarray):
        if codes.dtype.kind not in "iu":
            raise TypeError(f"codes must be integers, got dtype {codes.dtype}")
        codes = torch.from_numpy(codes.astype(np.int64, copy=False))
    if not isinstance(codes, torch.Tensor):
        raise TypeError(f"codes must be a numpy array or tensor, got {type(codes).__name__}")
    if codes.dtype.is_floating_point or codes.is_complex() or codes.dtype == torch.bool:
        raise TypeError(f"codes must be integers, got dtype {codes.dtype}")
    if codes.dim() not in dims or codes.shape[-1] < min_frames:
        raise FormatError(f"codes must be {layout} with F >= {min_frames}, got shape {tuple(codes.shape)}")
    if not 1 <= codes.shape[-2] <= n_q:
        raise FormatError(f"codes have {counted(codes.shape[-2], 'stage')}, the model has {n_q}")
    if codes.numel():
        lo, hi = int(codes.min()), int(codes.max())
        if lo < 0 or hi >= codebook_size:
            raise FormatError(f"code {lo if lo < 0 else hi} is outside the codebook 0..{codebook_size - 1}: "
                              f"codes must be in [0, {codebook_size})")
    return codes.long()
