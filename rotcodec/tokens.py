"""Codes as one token stream for a language model: layouts, vocabulary, strict inverse.

A model's codes for one channel are ``[n_q, F]`` (stages x frames), each code in ``0 .. K - 1``
(``K`` = codebook size). A language model wants one sequence of ids from one vocabulary, so
:func:`flatten` gives stage ``q`` the ids ``q * K .. q * K + K - 1`` (per-stage offsets: one
vocabulary of ``n_q * K`` ids covers every stage, and an id says which stage it belongs to) and
lays the codes out in one of two orders:

* ``"frame"`` (frame-major interleave, the default; VALL-E's and SNAC's flat order, the order a
  model generates in when it emits one frame at a time)::

      f0q0 f0q1 ... f0q(n-1)  f1q0 f1q1 ...        id = q * K + codes[q, f]

* ``"stage"`` (stage-major: all of stage 0, then all of stage 1, ...; the order of models that
  generate coarse stages first)::

      f0q0 f1q0 ... f(F-1)q0  f0q1 f1q1 ...

:func:`unflatten` is the strict inverse: it rejects (with :class:`~rotcodec.errors.FormatError`)
any id outside the vocabulary, any id at a position whose stage it does not belong to, and any
length that is not a whole number of frames, so a language model's mistakes surface as a clear
error rather than as noise. Arrays may be numpy arrays or torch tensors; leading dimensions
(channels, batch) are kept: ``[..., n_q, F] <-> [..., n_q * F]``.

Token files (``.rcq`` or ``.npy``, as written by ``rotcodec tokenize``) load as codes with
:func:`load_codes`, and their gains (the level of each second, which the encoder took out: see
:mod:`rotcodec.coding.conditioning`) with :func:`load_gains`. A language model models the codes
only; codes decoded without gains come out at the reference level (-26 dBFS).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from rotcodec.checks import is_int, positive_int
from rotcodec.errors import FormatError
from rotcodec.io.container import read_rcq, read_rcq_gains
from rotcodec.text import counted

__all__ = ["LAYOUTS", "vocab_size", "flatten", "unflatten", "load_codes", "load_gains", "MAX_NPY_BYTES"]

LAYOUTS = ("frame", "stage")
MAX_NPY_BYTES = 1 << 31
"""Largest ``.npy`` token file :func:`load_codes` reads (2 GiB: about 280 hours of 12-stage codes)."""

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return layout


def vocab_size(n_q: int, codebook_size: int) -> int:
    """Ids in the flat vocabulary: ``n_q * codebook_size`` (stage ``q`` owns ``q*K .. q*K+K-1``)."""
    return positive_int("n_q", n_q, numpy=True) * positive_int("codebook_size", codebook_size, numpy=True)


def _is_integer(x) -> bool:
    if isinstance(x, torch.Tensor):
        return not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool)
    return isinstance(x, np.ndarray) and x.dtype.kind in "iu"


def _offsets(x: Array, n_q: int, codebook_size: int) -> Array:
    """``[n_q, 1]`` stage offsets ``q * K`` in ``x``'s library and int64."""
    if isinstance(x, torch.Tensor):
        return torch.arange(n_q, device=x.device, dtype=torch.int64)[:, None] * codebook_size
    return np.arange(n_q, dtype=np.int64)[:, None] * codebook_size


def flatten(codes: Array, codebook_size: int, layout: str = "frame") -> Array:
    """Codes ``[..., n_q, F]`` (values ``0 .. K-1``) -> ids ``[..., n_q * F]`` (int64, offsets added).

    Raises:
        FormatError: a code outside ``0 .. codebook_size - 1``.
        ValueError / TypeError: a bad layout, shape or dtype (programming errors).
    """
    k = positive_int("codebook_size", codebook_size, numpy=True)
    _layout(layout)
    if not _is_integer(codes):
        raise TypeError(f"codes must be an integer numpy array or tensor, got {getattr(codes, 'dtype', type(codes))}")
    if codes.ndim < 2:
        raise ValueError(f"codes must be [..., n_q, F], got shape {tuple(codes.shape)}")
    if codes.numel() if isinstance(codes, torch.Tensor) else codes.size:
        lo, hi = int(codes.min()), int(codes.max())
        if lo < 0 or hi >= k:
            bad = lo if lo < 0 else hi
            raise FormatError(f"code {bad} is outside the codebook 0..{k - 1}")
    n_q = codes.shape[-2]
    ids = codes.astype(np.int64) if isinstance(codes, np.ndarray) else codes.long()
    ids = ids + _offsets(ids, n_q, k)
    if layout == "frame":
        ids = ids.swapaxes(-1, -2) if isinstance(ids, np.ndarray) else ids.transpose(-1, -2)
    return ids.reshape(*ids.shape[:-2], -1)


def unflatten(ids: Array, n_q: int, codebook_size: int, layout: str = "frame") -> Array:
    """Strict inverse of :func:`flatten`: ids ``[..., n_q * F]`` -> codes ``[..., n_q, F]`` (int64).

    Raises:
        FormatError: the length is not a multiple of ``n_q``, or an id is outside
            ``0 .. n_q * K - 1`` or outside the range of the stage its position belongs to
            (the message gives the position, frame and stage of the first bad id).
    """
    n_q, k = positive_int("n_q", n_q, numpy=True), positive_int("codebook_size", codebook_size, numpy=True)
    _layout(layout)
    if not _is_integer(ids):
        raise FormatError(f"token ids must be integers, got {getattr(ids, 'dtype', type(ids).__name__)}")
    if ids.ndim < 1:
        raise FormatError("token ids must be [..., n_q * F], got a scalar")
    n = ids.shape[-1]
    if n % n_q:
        raise FormatError(f"{n} token ids are not a whole number of frames of {counted(n_q, 'stage')}")
    frames = n // n_q
    torch_in = isinstance(ids, torch.Tensor)
    x = ids.long() if torch_in else ids.astype(np.int64)
    if layout == "frame":
        x = x.reshape(*x.shape[:-1], frames, n_q)
        x = x.transpose(-1, -2) if torch_in else x.swapaxes(-1, -2)
    else:
        x = x.reshape(*x.shape[:-1], n_q, frames)
    codes = x - _offsets(x, n_q, k)
    bad = (codes < 0) | (codes >= k)
    if bool(bad.any()):
        where = np.argwhere(bad.cpu().numpy() if torch_in else bad)[0]
        *lead, q, f = (int(i) for i in where)
        pos = f * n_q + q if layout == "frame" else q * frames + f
        value = int(x[tuple(lead) + (q, f)])
        at = f"position {pos}" + (f" of row {tuple(lead)}" if lead else "")
        if not 0 <= value < n_q * k:
            raise FormatError(f"token id {value} at {at} is outside the vocabulary 0..{n_q * k - 1}")
        raise FormatError(f"token id {value} at {at} (frame {f}, stage {q}) is not a stage-{q} id: "
                          f"stage {q} owns ids {q * k}..{q * k + k - 1}")
    return codes.contiguous() if torch_in else np.ascontiguousarray(codes)


def load_codes(path: str | os.PathLike) -> np.ndarray:
    """The codes ``[C, n_q, F]`` (int64) of a token file: ``.rcq``, or ``.npy`` (integer ``[C, n_q, F]``).

    ``.npy`` files are read without unpickling (``allow_pickle=False``). The codes are not checked
    against a model here (``.rcq`` headers are, when decoding); use the manifest's ``n_q`` and the
    model's codebook size with :func:`flatten`.

    Raises:
        FormatError: not a valid token file (bad magic, corrupt, object arrays, wrong rank,
            negative codes, too large).
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such token file: {path}")
    if path.suffix.lower() == ".npy":
        return _load_npy(path)
    with open(path, "rb") as f:
        return read_rcq(f)[1]


def load_gains(path: str | os.PathLike, entry: dict | None = None) -> tuple[np.ndarray | None, int]:
    """The gains of a token file: ``(gains [C, B] int8 or None, gain_frames)``.

    An ``.rcq`` carries them itself; an ``.npy`` token file's are in its manifest ``entry``
    (``"gains"``: one list of int8 codes per channel, ``"gain_frames"``: frames per block), which
    must then be given. ``(None, 0)``: tokens without gains (made with conditioning off, or before
    gains existed), to be decoded at the reference level. The codes of the gains are not checked
    against the codes' shape here (decoding does that).

    Raises:
        FormatError: a malformed ``.rcq``, or manifest gains that are not int8 lists of equal length
            or come without a positive ``gain_frames``.
        FileNotFoundError: no such ``.rcq`` file.
    """
    path = Path(path)
    if path.suffix.lower() != ".npy":
        if not path.is_file():
            raise FileNotFoundError(f"no such token file: {path}")
        with open(path, "rb") as f:
            header, _, gains = read_rcq_gains(f)
        return (gains, header.gain_frames) if header.gain_frames else (None, 0)
    entry = entry or {}
    gains, frames = entry.get("gains"), entry.get("gain_frames", 0)
    if gains is None:
        return None, 0
    if not is_int(frames) or frames < 1:
        raise FormatError(f"{path}: manifest gains need a positive gain_frames, got {frames!r}")
    if not (isinstance(gains, list) and gains and all(isinstance(row, list) for row in gains)
            and len({len(row) for row in gains}) == 1
            and all(is_int(g) and -128 <= g <= 127 for row in gains for g in row)):
        raise FormatError(f"{path}: manifest gains must be one list of int8 codes per channel, all of one length")
    return np.array(gains, dtype=np.int8), frames


def _load_npy(path: Path) -> np.ndarray:
    if path.stat().st_size > MAX_NPY_BYTES:
        raise FormatError(f"{path}: .npy token file larger than {MAX_NPY_BYTES} bytes")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:  # bad magic, truncated, pickled objects
        raise FormatError(f"{path}: not a valid .npy token file ({' '.join(str(err).split())})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iu":
        raise FormatError(f"{path}: .npy token file must hold integers, got {getattr(arr, 'dtype', type(arr))}")
    if arr.ndim != 3:
        raise FormatError(f"{path}: .npy token file must be [C, n_q, F], got shape {arr.shape}")
    if arr.size and int(arr.min()) < 0:
        raise FormatError(f"{path}: .npy token file holds a negative code ({int(arr.min())})")
    return arr.astype(np.int64)
