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

from rotcodec import api, metrics
from rotcodec.io.audio import read_audio
from rotcodec.model.codec import Codec

__all__ = ["Score", "score_pair", "evaluate", "markdown_table", "audio_files"]

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


def evaluate(model: Codec, files: list[Path], kbps_list: list[float | None]) -> list[Score]:
    """One :class:`Score` per bitrate in ``kbps_list`` (None: all stages) over ``files``."""
    clips = [read_audio(f) for f in files]
    scores = []
    for kbps in kbps_list:
        rows, bits, seconds = [], 0.0, 0.0
        for wav, sr in clips:
            data = api.compress(wav, sr, model, kbps=kbps)
            est, _ = api.decompress(data, model)
            rows.append(score_pair(wav, est.numpy(), sr))
            bits += 8 * len(data)
            seconds += wav.shape[-1] / sr
        label = f"rotcodec {model.bitrate(model.n_q_for_kbps(kbps)) / 1000:g} kbps"
        scores.append(aggregate(label, kbps, rows, bits, seconds))
    return scores


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(scores: list[Score]) -> str:
    """A markdown table, one row per score."""
    lines = ["| codec | real kbps | PESQ-WB | STOI | mel distance | SI-SDR (dB) | clips |",
             "|---|---|---|---|---|---|---|"]
    for s in scores:
        lines.append(f"| {s.name} | {s.kbps_real:.2f} | {_fmt(s.pesq, 2)} | {_fmt(s.stoi, 3)} | "
                     f"{s.mel:.3f} | {s.si_sdr:.1f} | {s.clips} |")
    return "\n".join(lines)
