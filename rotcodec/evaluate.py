"""Objective evaluation of a model on a folder of audio, at several bitrates.

For each bitrate every file is compressed to real ``.rcq`` bytes and decoded back at its own rate,
so the bitrate reported is the file size over the duration (container overhead included), and
the metrics are those a user of ``rotcodec compress``/``decompress`` gets.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from rotcodec import api, metrics
from rotcodec.io.audio import read_audio
from rotcodec.io.container import loads
from rotcodec.model.codec import Codec
from rotcodec.quantize.codebook_ops import code_histogram, perplexity

__all__ = ["Score", "score_pair", "stage_stats", "evaluate", "markdown_table", "usage_table", "audio_files"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


@dataclass
class Score:
    """Mean metrics over a set of clips at one bitrate (None where a metric had no valid clip)."""

    name: str
    kbps_nominal: float | None
    kbps_real: float
    pesq: float | None
    stoi: float | None
    mel: float
    si_sdr: float
    clips: int
    usage: list[float] | None = None  # per stage: % of the codebook used on the whole set
    perplexity: list[float] | None = None  # per stage: exp(entropy) of the code histogram on the set

    def as_dict(self) -> dict:
        return asdict(self)


def score_pair(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> dict[str, float | None]:
    """Metrics of one decoded clip ``est`` against ``ref`` (both ``[C, T]`` at ``sample_rate``)."""
    return {
        "pesq": metrics.pesq_wb(ref, est, sample_rate),
        "stoi": metrics.stoi(ref, est, sample_rate),
        "mel": metrics.mel_distance(ref, est, sample_rate),
        "si_sdr": metrics.si_sdr(ref, est),
    }


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else None


def aggregate(name: str, kbps_nominal: float | None, rows: list[dict], total_bits: float, total_seconds: float) -> Score:
    """Average per-clip rows (from :func:`score_pair`) into a :class:`Score`."""
    return Score(name, kbps_nominal, total_bits / total_seconds / 1000,
                 *(_mean(r[k] for r in rows) for k in ("pesq", "stoi", "mel", "si_sdr")), len(rows))


def audio_files(folder: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """Audio files under ``folder`` (recursively, sorted), at most ``limit``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no audio files (.wav, .flac, .ogg) under {folder}")
    return files[:limit] if limit else files


def stage_stats(codes: list[np.ndarray], codebook_size: int) -> tuple[list[float], list[float]]:
    """Per-stage codebook usage (% of codes used) and perplexity over ``codes`` (each ``[C, n_q, F]``)."""
    usage, perp = [], []
    for q in range(codes[0].shape[1]):
        hist = sum(code_histogram(torch.from_numpy(c[:, q]), codebook_size) for c in codes)
        usage.append(100.0 * float((hist > 0).float().mean()))
        perp.append(float(perplexity(hist)))
    return usage, perp


def evaluate(model: Codec, files: list[Path], kbps_list: list[float | None]) -> list[Score]:
    """One :class:`Score` per bitrate in ``kbps_list`` (None: all stages) over ``files``."""
    clips = [read_audio(f) for f in files]
    scores = []
    for kbps in kbps_list:
        rows, codes, bits, seconds = [], [], 0.0, 0.0
        for wav, sr in clips:
            data = api.compress(wav, sr, model, kbps=kbps)
            est, _ = api.decompress(data, model)
            rows.append(score_pair(wav, est.numpy(), sr))
            codes.append(loads(data)[1])
            bits += 8 * len(data)
            seconds += wav.shape[-1] / sr
        label = f"rotcodec {model.bitrate(model.n_q_for_kbps(kbps)) / 1000:g} kbps"
        score = aggregate(label, kbps, rows, bits, seconds)
        score.usage, score.perplexity = stage_stats(codes, model.config.quantizer.codebook_size)
        scores.append(score)
    return scores


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def usage_table(scores: list[Score]) -> str:
    """A markdown table of per-stage codebook usage (%) and perplexity, one row per score that has them."""
    scores = [s for s in scores if s.usage]
    if not scores:
        return ""
    n = max(len(s.usage) for s in scores)
    lines = ["| codec | " + " | ".join(f"stage {q + 1}" for q in range(n)) + " |", "|---" * (n + 1) + "|"]
    for s in scores:
        cells = [f"{u:.1f}% / {p:.0f}" for u, p in zip(s.usage, s.perplexity)] + [""] * (n - len(s.usage))
        lines.append(f"| {s.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(scores: list[Score]) -> str:
    """A markdown table, one row per score."""
    lines = ["| codec | real kbps | PESQ-WB | STOI | mel distance | SI-SDR (dB) | clips |",
             "|---|---|---|---|---|---|---|"]
    for s in scores:
        lines.append(f"| {s.name} | {s.kbps_real:.2f} | {_fmt(s.pesq, 2)} | {_fmt(s.stoi, 3)} | "
                     f"{s.mel:.3f} | {s.si_sdr:.1f} | {s.clips} |")
    return "\n".join(lines)
