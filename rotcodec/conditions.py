"""Recording conditions: how much a codec loses on files as people bring them, against clean ones.

Each clip of a folder is coded as recorded and in conditioned copies (:data:`CONDITIONS`): quiet
(-46 and -36 dBFS RMS), loud (peak 0.9), a DC offset of +0.05, white noise at 15 dB SNR, and the
telephone band. Every copy is scored against itself as the codec's input, with the DC removed from
both sides (a codec that rejects DC, as Opus and rotcodec do, is not charged for it). Opus at the
same bitrates sits beside rotcodec when ``opusenc`` is installed (``rotcodec eval --conditions``).

Conditions are deterministic: the noise of clip ``i`` is drawn from a generator seeded with ``i``.
Shapes: clips ``[C, T]`` float32 numpy arrays.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from rotcodec.dsp import add_noise, phone_band

__all__ = ["CONDITIONS", "apply_condition", "evaluate_conditions", "rotcodec_coder", "opus_coder", "coders_for",
           "markdown"]

CONDITIONS = ("as recorded", "-46 dBFS", "-36 dBFS", "peak 0.9", "DC +0.05", "noise 15 dB", "phone band")


def _rms_to(wav: np.ndarray, db: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    return wav * (10 ** (db / 20) / rms) if rms > 0 else wav


def apply_condition(wav: np.ndarray, sr: int, name: str, seed: int = 0) -> np.ndarray:
    """The clip ``wav [C, T]`` under the condition ``name`` (one of :data:`CONDITIONS`), float32.

    Levels are set on the whole clip; "peak 0.9" scales its largest sample to 0.9."""
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; one of {', '.join(CONDITIONS)}")
    wav = np.asarray(wav, dtype=np.float32)
    if name == "as recorded":
        out = wav
    elif name.endswith("dBFS"):
        out = _rms_to(wav, float(name.split()[0]))
    elif name == "peak 0.9":
        peak = float(np.abs(wav).max())
        out = wav * (0.9 / peak) if peak > 0 else wav
    elif name == "DC +0.05":
        out = wav + 0.05
    elif name == "noise 15 dB":
        out = add_noise(torch.from_numpy(wav.copy()), 15.0, torch.Generator().manual_seed(seed)).numpy()
    else:
        out = phone_band(torch.from_numpy(wav.copy()), sr).numpy()
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _dc_free(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=-1, keepdims=True)


Coder = Callable[[np.ndarray, int], tuple[np.ndarray, int]]
"""A round trip: ``(wav [C, T], sr) -> (decoded [C, T], bytes)``."""


def evaluate_conditions(clips: list[tuple[np.ndarray, int]], coders: dict[str, Coder],
                        conditions: tuple[str, ...] = CONDITIONS,
                        progress: Callable[[str, str], None] | None = None) -> list[dict]:
    """Score every coder on every condition of every clip.

    Returns one row per (condition, coder): ``{"condition", "codec", "pesq", "stoi", "si_sdr", "mel",
    "kbps_real", "clips", "per_clip"}`` (means over the clips; ``per_clip`` in clip order, for paired
    comparisons)."""
    from rotcodec.evaluate import aggregate, score_pair  # evaluate imports the model stack: only when scoring

    rows = []
    for cond in conditions:
        conditioned = [(apply_condition(wav, sr, cond, seed=i), sr) for i, (wav, sr) in enumerate(clips)]
        for name, coder in coders.items():
            if progress:
                progress(cond, name)
            per_clip, bits, seconds = [], 0.0, 0.0
            for wav, sr in conditioned:
                est, size = coder(wav, sr)
                duration = wav.shape[-1] / sr
                per_clip.append({**score_pair(_dc_free(wav), _dc_free(est), sr), "kbps_real": 8 * size / duration / 1000})
                bits, seconds = bits + 8 * size, seconds + duration
            score = aggregate(name, None, per_clip, bits, seconds)
            rows.append({"condition": cond, "codec": name, "pesq": score.pesq, "stoi": score.stoi,
                         "si_sdr": score.si_sdr, "mel": score.mel, "kbps_real": score.kbps_real,
                         "clips": score.clips, "per_clip": per_clip})
    return rows


def rotcodec_coder(model, kbps: float | None, beam: int | None = None) -> Coder:
    """The user's round trip: ``.rcq`` bytes by :func:`rotcodec.api.compress` (``kbps`` the clip's
    total, all channels) and back."""
    from rotcodec import api

    def code(wav, sr):
        data = api.compress(wav, sr, model, kbps=kbps, beam=beam)
        return api.decompress(data, model)[0].numpy(), len(data)
    return code


def opus_coder(kbps: float) -> Coder:
    """Opus at ``kbps`` through opusenc/opusdec (:mod:`rotcodec.opus`)."""
    from rotcodec.opus import opus_roundtrip

    def code(wav, sr):
        with tempfile.TemporaryDirectory() as work:
            return opus_roundtrip(wav, sr, kbps, Path(work))
    return code


def coders_for(model, kbps: list[float | None], opus: list[float], beam: int | None = None) -> dict[str, Coder]:
    """rotcodec at each of ``kbps`` (None: all stages; named by the bitrate its stages give a mono
    clip) and Opus at each of ``opus``."""
    from rotcodec.bitrate import nominal_kbps, stages_for_kbps

    coders = {f"rotcodec {nominal_kbps(model, stages_for_kbps(model, k, 1, warn=False)):g} kbps":
              rotcodec_coder(model, k, beam) for k in kbps}
    coders.update({f"Opus {k:g} kbps": opus_coder(k) for k in opus})
    return coders


def markdown(rows: list[dict]) -> str:
    """PESQ-WB by condition (rows) and codec (columns), with each condition's change from "as recorded"."""
    codecs = list(dict.fromkeys(r["codec"] for r in rows))
    conds = list(dict.fromkeys(r["condition"] for r in rows))
    cell = {(r["condition"], r["codec"]): r["pesq"] for r in rows}
    lines = ["| condition | " + " | ".join(codecs) + " |", "|---" * (len(codecs) + 1) + "|"]
    for c in conds:
        parts = []
        for k in codecs:
            v, base = cell.get((c, k)), cell.get(("as recorded", k))
            if v is None:
                parts.append("-")
            elif c == "as recorded" or base is None:
                parts.append(f"{v:.2f}")
            else:
                parts.append(f"{v:.2f} ({v - base:+.2f})")
        lines.append(f"| {c} | " + " | ".join(parts) + " |")
    return "\n".join(lines)
