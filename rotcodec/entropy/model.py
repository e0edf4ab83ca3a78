"""The context model in integer arithmetic: code probabilities as integer frequency tables.

For the codes of one channel, ``codes [n_q, F]`` (values ``0 .. K-1``), the model gives code
``c[s, f]`` a frequency table over the ``K`` codes from

* the codes of the previous ``P`` frames, stages ``0 .. n_q - 1`` (a padding row ``K`` stands
  for frames before the start), and
* the lower stages ``0 .. s - 1`` of the same frame,

as an MLP with integer weights::

    h0 = stage_bias[s] + nq_bias[n_q] + sum over context codes c of mult[t, c] * emb[t, c]   [D]
    a1 = clip((h0 * m0 + 2**(sh0-1)) >> sh0, 0, A)                                          [D]
    a2 = clip(((W1[s] @ a1 + b1[s]) * m1[s] + 2**(sh1-1)) >> sh1, 0, A)                     [D]
    z  = ((Wo[s] @ a2 + bo[s]) * mo[s] + 2**(sho-1)) >> sho        (logits in 1/Q nat)      [K]
    freq = lut[min(max(z) - z, len(lut) - 1)]                      (every entry >= 1)       [K]

``t`` is the table of the context slot (previous frame ``p``, stage ``s'``; or the current frame,
stage ``s'``). Every value is an integer. The arithmetic runs on float64 arrays that hold
integers times a power of two: each layer's multipliers and ``2**-sh`` are folded into its weights
and biases (``mult * emb * m0 * 2**-sh0``, ``W1[s] * m1[s] * 2**-sh1``,
``(b1[s] * m1[s] + 2**(sh1-1)) * 2**-sh1``, ...), and a bias is the last row of the weights, times
an activation fixed at 1. Every product and partial sum is an integer below ``2**53`` times
``2**-sh`` (checked from the weights' maxima when the model is built), so every operation is exact
in any summation order, on any CPU, BLAS and thread count, and a sum that skips zero terms (the
decoder multiplies only the output rows of nonzero activations) is the same number. ``>> sh`` is
``floor`` of the scaled sum: for ``a1`` and ``a2`` a truncating cast to int64 (floor once clipped
at 0), then a lookup in ``0 .. A`` with clipped indices; for ``z`` a truncating cast too, as the
output bias also holds an integer ``lift`` above ``max |z|`` (where every sum stays below ``2**53``
with it; else 0, and ``np.floor``): ``z + lift > 0``, and ``max(z) - z`` is unchanged. The
exponential is the lookup table ``lut`` stored in the model file, not recomputed with libm.
:meth:`IntContextModel.tables` (all frames at once, the encoder) and :class:`SequentialTables`
(frame by frame, stage by stage, the decoder) therefore give the same integers. The file is an
``.npz`` of plain arrays (no pickles) plus a JSON ``meta`` string.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from rotcodec.errors import FormatError

__all__ = ["FILE_FORMAT", "IntContextModel", "SequentialTables", "load_context_model"]

FILE_FORMAT = "rotcodec-entropy/1"
_EXACT = 2**53  # integers below this are exact in float64
_ARRAYS = {  # name -> (dtype, shape in terms of the meta sizes)
    "emb": (np.int8, ("T", "K1", "D")), "mult": (np.int32, ("T", "K1")),
    "stage_bias": (np.int64, ("S", "D")), "nq_bias": (np.int64, ("S1", "D")),
    "w1": (np.int8, ("S", "D", "D")), "b1": (np.int64, ("S", "D")), "m1": (np.int64, ("S", "D")),
    "wo": (np.int8, ("S", "K", "D")), "bo": (np.int64, ("S", "K")), "mo": (np.int64, ("S", "K")),
    "lut": (np.int64, ("L",)),
}
_META_INT = ("K", "S", "P", "D", "A", "Q", "m0", "sh0", "sh1", "sho")


@dataclass(frozen=True, eq=False)
class IntContextModel:
    """Integer weights of the context model (see the module docstring) and what they were fitted to.

    ``meta``: ``K`` codebook size, ``S`` stages it models (files with up to ``S`` stages), ``P``
    previous frames, ``D`` width, ``A`` activation maximum, ``Q`` logit steps per nat, the
    requantisation ``m0, sh0, sh1, sho``, and ``codec`` / ``codec_hash``: the codec (id and
    weights hash) whose codes it was fitted to.
    """

    meta: dict
    arrays: dict

    def __post_init__(self) -> None:
        m, a = self.meta, self.arrays
        if m.get("format") != FILE_FORMAT:
            raise FormatError(f"not a rotcodec context model (format {m.get('format')!r}, expected {FILE_FORMAT!r})")
        for key in _META_INT:
            if not isinstance(m.get(key), int) or isinstance(m.get(key), bool) or m[key] < 0:
                raise FormatError(f"context model: meta field {key!r} must be an integer >= 0")
        sizes = {"K": m["K"], "K1": m["K"] + 1, "S": m["S"], "S1": m["S"] + 1, "D": m["D"],
                 "T": m["P"] * m["S"] + m["S"] - 1, "L": len(a.get("lut", ()))}
        if not (1 <= m["K"] <= 65536 and 1 <= m["S"] <= 64 and 1 <= m["D"] <= 4096 and sizes["L"] >= 1
                and 1 <= m["A"] < 2**16 and all(1 <= m[k] <= 62 for k in ("sh0", "sh1", "sho"))):
            raise FormatError("context model: sizes out of range")
        for name, (dtype, shape) in _ARRAYS.items():
            arr = a.get(name)
            want = tuple(sizes[d] for d in shape)
            if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.shape != want:
                raise FormatError(f"context model: array {name!r} must be {np.dtype(dtype).name} {list(want)}")
        lut = a["lut"]
        if lut.min() < 1 or int(lut.max()) * m["K"] > 2**32:
            raise FormatError("context model: lookup table entries must be >= 1 with K * max <= 2**32")
        # Inference runs on float64 arrays holding integers: the requantisation multipliers are
        # folded into the weights and biases (W * m, b * m + 2**(sh-1)), and ">> sh" is
        # floor(x * 2**-sh). Every product and partial sum is an integer below 2**53, so each
        # operation is exact in any order. The bounds, from the weights' maxima:
        big = lambda x: float(np.abs(x.astype(np.float64)).max())  # noqa: E731
        emb0 = a["emb"].reshape(-1, m["D"]).astype(np.float64) * a["mult"].reshape(-1, 1) * m["m0"]
        base0 = ((a["stage_bias"][:, None, :] + a["nq_bias"][None, :, :]).astype(np.float64) * m["m0"]
                 + 2.0 ** (m["sh0"] - 1))  # [S, S + 1, D]: by stage and n_q
        w1 = a["w1"].astype(np.float64) * a["m1"][:, :, None]
        b1 = a["b1"].astype(np.float64) * a["m1"] + 2.0 ** (m["sh1"] - 1)
        wo = a["wo"].astype(np.float64) * a["mo"][:, :, None]
        bo = a["bo"].astype(np.float64) * a["mo"] + 2.0 ** (m["sho"] - 1)
        bounds = (sizes["T"] * big(emb0) + big(base0), m["D"] * m["A"] * big(w1) + big(b1),
                  m["D"] * m["A"] * big(wo) + big(bo))
        if max(bounds) >= _EXACT or max(big(a["m1"]), big(a["mo"]), m["m0"]) >= 2**31:
            raise FormatError("context model: weights too large for exact integer inference")
        # The arrays used: those integers times 2**-sh0, 2**-sh1, 2**-sho (exact), the biases as
        # the last row of the weights ([a, 1] @ [W; b] adds them in the same exact sum). The output
        # bias also holds an integer lift > max |z| where every sum stays below 2**53 with it:
        # z + lift > 0 is floored by a truncating cast, and max(z) - z is unchanged (else lift = 0).
        s0, s1, so = 2.0 ** -m["sh0"], 2.0 ** -m["sh1"], 2.0 ** -m["sho"]
        lift = int(bounds[2] * so) + 1
        lift = lift if bounds[2] + lift * 2.0 ** m["sho"] < _EXACT else 0
        wob = np.ascontiguousarray(np.concatenate([wo.transpose(0, 2, 1), bo[:, None]], axis=1) * so)
        wob[:, -1] += lift  # [S, D + 1, K]; (bo * mo + 2**(sho-1) + lift * 2**sho) * 2**-sho, exactly
        attrs = {"_emb0": emb0 * s0, "_base0": base0 * s0, "_wob": wob, "_lifted": lift > 0,
                 "_w1b": np.ascontiguousarray(np.concatenate([w1.transpose(0, 2, 1), b1[:, None]], axis=1) * s1),
                 "_ramp": np.arange(m["A"] + 1, dtype=np.float64), "_lut": np.ascontiguousarray(lut),
                 "_sparse_rows": (m["D"] + 1) // 3}  # the decoder's sparse product pays up to here
        for name, value in attrs.items():
            object.__setattr__(self, name, value)

    # ----- identity ------------------------------------------------------------------------------
    @cached_property
    def digest(self) -> str:
        """8 hex digits of SHA-256 over the meta and every array (dtype, shape, bytes): a check that
        a file is decoded with the context model that coded it (4 bytes in each coded file)."""
        h = hashlib.sha256(json.dumps(self.meta, sort_keys=True).encode())
        for name in sorted(self.arrays):
            arr = np.ascontiguousarray(self.arrays[name])
            h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
            h.update(arr.tobytes())
        return h.hexdigest()[:8]

    @cached_property
    def min_code_bits(self) -> float:
        """The fewest bits any code can cost: the likeliest a table can make a code is
        ``max(lut) / (max(lut) + (K - 1) * min(lut))``."""
        lut = self.arrays["lut"]
        top, low = int(lut.max()), int(lut.min())
        return math.log2((top + (self.meta["K"] - 1) * low) / top)

    @property
    def codebook_size(self) -> int:
        return self.meta["K"]

    @property
    def max_stages(self) -> int:
        return self.meta["S"]

    def save(self, path: str | os.PathLike) -> None:
        """Write the model as an uncompressed-arrays ``.npz`` (atomically)."""
        from rotcodec.files import atomic_write

        meta = np.array(json.dumps(self.meta, sort_keys=True))
        atomic_write(path, lambda f: np.savez_compressed(f, meta=meta, **self.arrays))

    # ----- the network ---------------------------------------------------------------------------
    def slot(self, lag: int, stage: int) -> int:
        """Table index of context slot (``lag`` frames back, 0 = the current frame; ``stage``)."""
        m = self.meta
        return (lag - 1) * m["S"] + stage if lag else m["P"] * m["S"] + stage

    def gather(self, slot: int, codes: np.ndarray) -> np.ndarray:
        """First-layer rows (``mult * emb * m0 * 2**-sh0``) of table ``slot`` for integer
        ``codes [...]`` (K = padding): float64 ``[..., D]``, integers times ``2**-sh0``."""
        return self._emb0[slot * (self.meta["K"] + 1) + codes]

    def base(self, stage: int, n_q: int) -> np.ndarray:
        """The biases of ``stage`` for a file of ``n_q`` stages, as the first-layer rows: ``[D]``."""
        return self._base0[stage, n_q]

    def freqs(self, stage: int, h0: np.ndarray) -> np.ndarray:
        """Integer frequency tables ``[N, K]`` (int64, every entry >= 1) from first-layer sums
        ``h0 [N, D]`` (:meth:`first_layer`)."""
        buf = _Buffers(self, h0.shape[0])
        np.copyto(buf.t, h0.reshape(buf.t.shape), casting="unsafe")  # truncated, see _freqs_into
        return self._freqs_into(stage, buf).reshape(h0.shape[0], self.meta["K"]).copy()

    def _freqs_into(self, stage: int, buf: _Buffers) -> np.ndarray:
        """:meth:`freqs` on buffers (the decoder's, reused from symbol to symbol), from ``buf.t``,
        the first-layer sums truncated to int64 (``clip(trunc(h), 0, A) == clip(floor(h), 0, A)``).
        Returns ``buf.freq``. Every value below is exact (see the module docstring)."""
        t, a1, a1v, x, a2, a2v, z, d, freq, w, keep = buf.arrays
        ramp = self._ramp
        ramp.take(t, None, a1v, "clip")  # a1 = clip(t, 0, A)
        a1.dot(self._w1b[stage], x)  # [a1, 1] @ [W1 m1; b1 m1 + 2**(sh1-1)] * 2**-sh1
        t[...] = x  # truncation (an assignment casts like C)
        ramp.take(t, None, a2v, "clip")  # a2 = clip(floor(x), 0, A)
        wo = self._wob[stage]  # z = [a2, 1] @ [Wo mo; bo mo + 2**(sho-1)] * 2**-sho + lift
        if w is not None and (nz := a2.nonzero()[0]).size <= self._sparse_rows:
            a2.take(nz).dot(wo.take(nz, 0, w[: nz.size], "clip"), z)  # only the rows of a2 != 0
        else:
            a2.dot(wo, z)
        if self._lifted:
            d[...] = z  # z + lift > 0: truncation is floor
        else:
            np.floor(z, d, casting="unsafe")
        np.subtract(np.maximum.reduce(d, -1, None, None, keep), d, d)  # max(z) - z >= 0
        return self._lut.take(d, None, freq, "clip")  # lut[min(max(z) - z, L - 1)]

    def check_codes_fit(self, n_q: int, codebook_size: int) -> None:
        """ValueError unless this model can code ``n_q`` stages of a ``codebook_size`` codebook."""
        if codebook_size != self.meta["K"] or not 1 <= n_q <= self.meta["S"]:
            raise ValueError(f"context model for {self.meta['S']} stages of {self.meta['K']} codes cannot "
                             f"code {n_q} stages of {codebook_size}")

    def first_layer(self, codes: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """First-layer sums of the codes of frames ``start .. stop - 1`` of ``codes [C, n_q, F]``,
        computed all at once: float64 ``[C, n_q, stop - start, D]``, integers times ``2**-sh0`` (what
        :class:`SequentialTables` gives one frame at a time)."""
        C, n_q, F = codes.shape
        stop = F if stop is None else min(stop, F)
        n = max(0, stop - start)
        P, K, D = self.meta["P"], self.meta["K"], self.meta["D"]
        lo = max(0, start - P)
        padded = np.concatenate([np.full((C, n_q, P - (start - lo)), K, dtype=np.int64),
                                 codes[:, :, lo:stop].astype(np.int64)], axis=-1)  # frames start-P .. stop-1
        prev = np.zeros((C, n, D))
        for lag in range(1, P + 1):
            for s in range(n_q):
                prev += self.gather(self.slot(lag, s), padded[:, s, P - lag: P - lag + n])
        h0 = np.empty((C, n_q, n, D))
        cur = prev
        for s in range(n_q):
            h0[:, s] = cur + self.base(s, n_q)
            if s + 1 < n_q:
                cur = cur + self.gather(self.slot(0, s), padded[:, s, P:])
        return h0

    def tables(self, codes: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frequency tables of the codes of frames ``start .. stop - 1`` of ``codes [C, n_q, F]``:
        int64 ``[C, n_q, stop - start, K]``."""
        h0 = self.first_layer(codes, start, stop)
        out = np.empty(h0.shape[:-1] + (self.meta["K"],), dtype=np.int64)
        for s in range(h0.shape[1]):
            out[:, s] = self.freqs(s, h0[:, s].reshape(-1, h0.shape[-1])).reshape(out[:, s].shape)
        return out

    def code_bits(self, codes: np.ndarray) -> np.ndarray:
        """Ideal code length in bits of every code of ``codes [C, n_q, F]`` under the integer
        tables: float64 ``[C, n_q, F]`` (the range coder spends this plus < 1e-6 per code)."""
        C, n_q, F = codes.shape
        out = np.empty((C, n_q, F))
        step = 256
        for f0 in range(0, F, step):
            t = self.tables(codes, f0, f0 + step)
            own = np.take_along_axis(t, codes[:, :, f0:f0 + step, None].astype(np.int64), axis=-1)[..., 0]
            out[:, :, f0:f0 + step] = np.log2(t.sum(-1)) - np.log2(own)
        return out


class _Buffers:
    """Scratch arrays of :meth:`IntContextModel._freqs_into` for ``N`` rows (one row: 1-d arrays,
    cheaper, and the output layer uses only the rows of its nonzero activations)."""

    def __init__(self, model: IntContextModel, N: int) -> None:
        D, K = model.meta["D"], model.meta["K"]
        lead = () if N == 1 else (N,)
        self.t = np.empty(lead + (D,), dtype=np.int64)
        a1, a2 = np.ones(lead + (D + 1,)), np.ones(lead + (D + 1,))  # last entry 1: the bias
        self.h, x, z = np.empty(lead + (D,)), np.empty(lead + (D,)), np.empty(lead + (K,))
        d, self.freq = np.empty(lead + (K,), dtype=np.int64), np.empty(lead + (K,), dtype=np.int64)
        w = np.empty((D + 1, K)) if N == 1 else None  # the output rows used
        self.arrays = (self.t, a1, a1[..., :D], x, a2, a2[..., :D], z, d, self.freq, w, N != 1)


class SequentialTables:
    """The decoder's path: tables for one frame and stage at a time, from the codes decoded so far.

    ``st = SequentialTables(model, channels, n_q)``; for each frame, for each stage ``s``:
    ``freq = st.next_tables()`` (int64 ``[C, K]``) then ``st.push(codes_of_stage_s)`` (``[C]``).
    Gives exactly the integers of :meth:`IntContextModel.tables` (the same exact arithmetic, on
    buffers reused from symbol to symbol).
    """

    def __init__(self, model: IntContextModel, channels: int, n_q: int) -> None:
        self.model, self.C, self.n_q = model, channels, n_q
        P, K, D = model.meta["P"], model.meta["K"], model.meta["D"]
        self._K = K
        self.history = np.full((P, n_q, channels), K, dtype=np.int64)  # [lag - 1, stage, C]
        self.frame = np.zeros((n_q, channels), dtype=np.int64)
        self.stage = 0
        self.base = [model.base(s, n_q) for s in range(n_q)]
        P_slots = np.array([[model.slot(lag, s) for s in range(n_q)] for lag in range(1, P + 1)], dtype=np.int64)
        self._prev_offsets = (P_slots * (K + 1)).reshape(-1, 1)  # [P * n_q, 1]
        self._cur_offsets = [model.slot(0, s) * (K + 1) for s in range(n_q)]
        self._buf = _Buffers(model, channels)
        self.cur = np.empty((channels, D))  # first-layer sums so far, without the biases
        self._cur = self.cur[0] if channels == 1 else self.cur  # the shape of the buffers
        self._new_frame()

    def _new_frame(self) -> None:
        idx = self._prev_offsets + self.history.reshape(len(self._prev_offsets), self.C)  # [P * n_q, C]
        np.add.reduce(self.model._emb0.take(idx, axis=0), axis=0, out=self.cur)

    def _next(self) -> np.ndarray:
        s, buf = self.stage, self._buf
        buf.t[...] = np.add(self._cur, self.base[s], buf.h)  # truncated (see _freqs_into)
        return self.model._freqs_into(s, buf)

    def next_tables(self) -> np.ndarray:
        """Frequency tables ``[C, K]`` of the next stage's codes."""
        return self._next().reshape(self.C, self._K).copy()

    def push(self, codes: np.ndarray) -> None:
        """The codes ``[C]`` of the stage whose tables :meth:`next_tables` gave."""
        s = self.stage
        frame = self.frame
        frame[s] = codes
        if s + 1 < self.n_q:
            self.stage = s + 1
            if self.C == 1:  # the row by an int index: a view, no gather
                np.add(self._cur, self.model._emb0[self._cur_offsets[s] + frame.item(s, 0)], self._cur)
            else:
                np.add(self.cur, self.model._emb0.take(frame[s] + self._cur_offsets[s], axis=0), self.cur)
            return
        if len(self.history):  # P = 0: no previous frames
            self.history[1:] = self.history[:-1]
            self.history[0] = frame
        self.stage = 0
        self._new_frame()

    def decode_frame(self, decode: Callable[[np.ndarray], int]) -> np.ndarray:
        """Decode the next frame (at stage 0): for each stage and channel, ``decode(cumulative)``
        gets the inclusive cumulative sums (int64 ``[K]``) and returns the code, which is pushed.
        Returns the frame's codes, int64 ``[C, n_q]``: :meth:`next_tables`, their cumulative sums
        and :meth:`push` in a loop, with less overhead."""
        if self.stage:
            raise ValueError("decode_frame starts a frame: call it at stage 0")
        nxt, push, accumulate = self._next, self.push, np.add.accumulate
        if self.C == 1:
            for _ in range(self.n_q):
                cum = nxt()
                push((decode(accumulate(cum, 0, None, cum)),))
        else:
            for _ in range(self.n_q):
                cum = nxt()
                push([decode(row) for row in accumulate(cum, 1, None, cum)])
        return self.frame.T.copy()


def load_context_model(path: str | os.PathLike) -> IntContextModel:
    """Load an ``.npz`` context model (never unpickling); FormatError if it is not a valid one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (OSError, ValueError, EOFError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise FormatError(f"{path} is not a loadable context model: {err}") from None
    meta_arr = arrays.pop("meta", None)
    if meta_arr is None or meta_arr.dtype.kind != "U" or meta_arr.shape != ():
        raise FormatError(f"{path} is not a rotcodec context model (no meta)")
    try:
        meta = json.loads(str(meta_arr))
    except ValueError:
        raise FormatError(f"{path} is not a rotcodec context model (bad meta)") from None
    if not isinstance(meta, dict):
        raise FormatError(f"{path} is not a rotcodec context model (bad meta)")
    return IntContextModel(meta, arrays)
