"""Objective evaluation of a model on a folder of audio, at several bitrates.

For each bitrate every file is compressed to real ``.rcq`` bytes and decoded back at its own rate,
so the bitrate reported is the file size over the duration (container overhead and gains
included), and the metrics are those a user of ``rotcodec compress``/``decompress`` gets: the
input conditioned on the way in and its level restored on the way out
(:mod:`rotcodec.coding.conditioning`). The per-stage quantization errors are measured on the
same conditioned signal the encoder sees.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
import torchaudio

from rotcodec import api, metrics
from rotcodec.bitrate import nominal_kbps, stages_for_kbps
from rotcodec.coding.chunks import model_device
from rotcodec.files import audio_files as find_audio
from rotcodec.coding.conditioning import GAIN_FRAMES, condition
from rotcodec.io.audio import read_audio
from rotcodec.io.container import loads
from rotcodec.model.codec import Codec
from rotcodec.quantize.codebook_ops import code_histogram, perplexity

__all__ = ["Score", "score_pair", "score_clips", "stage_stats", "stage_errors", "StageErrors", "evaluate", "evaluate_clips",
           "markdown_table", "usage_table", "audio_files"]

QERR_SECONDS = 60.0
"""Quantization error is measured on at most this much of each file (a one-piece forward pass)."""

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
    qerr: list[float] | None = None  # per stage: mean ||e - q||^2 in the stage's code space
    qerr_rel: list[float] | None = None  # per stage: the same over mean ||e||^2 (scale-free)
    lam: list[float] | None = None  # per stage: mean ||q|| / ||e||, the rotation trick's gradient scale
    obtuse: list[float] | None = None  # per stage: fraction of frames with e.q < 0 (least stable rotation)
    per_clip: list[dict] | None = None  # per clip, in order: score_pair's metrics and "kbps_real"

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


def score_clips(name: str, kbps_nominal: float | None, clips: list[tuple[np.ndarray, int]],
                roundtrip: Callable[[np.ndarray, int], tuple[np.ndarray, int]],
                on_decoded: Callable[[int, str, np.ndarray, np.ndarray, int], None] | None = None) -> Score:
    """Score one codec at one bitrate: ``roundtrip(wav, sr) -> (decoded [C, T] at sr, bytes used)``
    for every clip ``(wav [C, T], sr)``; the real bitrate is the bytes over the duration.
    ``on_decoded`` as in :func:`evaluate`."""
    rows, bits, seconds = [], 0.0, 0.0
    for i, (wav, sr) in enumerate(clips):
        est, size = roundtrip(wav, sr)
        duration = wav.shape[-1] / sr
        rows.append({**score_pair(wav, est, sr), "kbps_real": 8 * size / duration / 1000})
        bits += 8 * size
        seconds += duration
        if on_decoded is not None:
            on_decoded(i, name, wav, est, sr)
    score = aggregate(name, kbps_nominal, rows, bits, seconds)
    score.per_clip = rows
    return score


def audio_files(folder: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """Audio files under ``folder`` (recursively, sorted), at most ``limit``."""
    folder = Path(folder)
    files = [folder / p for p in find_audio(folder, AUDIO_SUFFIXES)]
    if not files:
        raise FileNotFoundError(f"no audio files (.wav, .flac, .ogg) under {folder}")
    return files[:limit] if limit else files


def stage_stats(codes: list[np.ndarray], codebook_size: int) -> tuple[list[float], list[float]]:
    """Per-stage codebook usage (% of codes used) and perplexity over ``codes`` (each ``[C, n_q, F]``;
    a clip with fewer stages, e.g. one with more channels at the same bitrate, counts in its own)."""
    usage, perp = [], []
    for q in range(max(c.shape[1] for c in codes)):
        hist = sum(code_histogram(torch.from_numpy(c[:, q]), codebook_size) for c in codes if c.shape[1] > q)
        usage.append(100.0 * float((hist > 0).float().mean()))
        perp.append(float(perplexity(hist)))
    return usage, perp


class StageErrors(NamedTuple):
    """Per-stage quantization statistics of one clip (lists of ``n_q``), over ``frames`` vectors."""

    err: list[float]  # mean ||e - q||^2
    energy: list[float]  # mean ||e||^2
    lam: list[float]  # mean ||q|| / ||e||
    obtuse: list[float]  # fraction with e.q < 0
    frames: int


@torch.inference_mode()
def stage_errors(model: Codec, wav: np.ndarray, sample_rate: int, n_q: int) -> StageErrors:
    """Per-stage quantization statistics of one clip ``[C, T]`` (:class:`StageErrors`), with ``e``
    each stage's input in its code space (the residual it quantizes) and ``q`` its greedy code, over
    the clip's first :data:`QERR_SECONDS` at the model's rate, conditioned as the encoder conditions
    it, channels as a batch."""
    x = torch.from_numpy(np.ascontiguousarray(wav[:, : int(QERR_SECONDS * sample_rate)], dtype=np.float32))
    if sample_rate != model.sample_rate:
        x = torchaudio.functional.resample(x, sample_rate, model.sample_rate)
    x = condition(x, GAIN_FRAMES * model.hop_length)[0]
    device = model_device(model)
    wav3 = x[:, None].to(device)
    out = model.quantizer(model.encoder(model._pad(wav3)), n_q)  # no decoder: only the stages' errors are needed
    err = [float(out.metrics[f"vq/qerr/{i}"]) for i in range(n_q)]
    energy = [e / max(float(out.metrics[f"vq/qerr_rel/{i}"]), 1e-30) if e > 0 else 0.0 for i, e in enumerate(err)]
    return StageErrors(err, energy, [float(out.metrics[f"vq/lambda/{i}"]) for i in range(n_q)],
                       [float(out.metrics[f"vq/obtuse/{i}"]) for i in range(n_q)], out.codes.shape[-1] * x.shape[0])


def evaluate(model: Codec, files: list[Path], kbps_list: list[float | None],
             on_decoded: Callable[[int, str, np.ndarray, np.ndarray, int], None] | None = None,
             beam: int | None = None) -> list[Score]:
    """One :class:`Score` per bitrate in ``kbps_list`` (None: all stages) over ``files``.

    ``on_decoded(file_index, label, ref, est, sample_rate)`` is called for every decoded file
    (e.g. to draw spectrograms of the first few). ``beam``: the encoder's search (None: the model's)."""
    return evaluate_clips(model, [read_audio(f) for f in files], kbps_list, on_decoded, beam)


def evaluate_clips(model: Codec, clips: list[tuple[np.ndarray, int]], kbps_list: list[float | None],
                   on_decoded: Callable[[int, str, np.ndarray, np.ndarray, int], None] | None = None,
                   beam: int | None = None) -> list[Score]:
    """:func:`evaluate` on clips already in memory, each ``(wav [C, T] float32, sample_rate)``.

    A bitrate of ``kbps_list`` is each clip's total, all its channels together, as everywhere in
    rotcodec (:func:`rotcodec.bitrate.stages_for_kbps`): a mono clip at 6 kbps gets 12 stages of
    0.5 kbps, a stereo one 6 a channel. Rows are named by the nominal bitrate of the clips (the
    highest, when their channel counts differ).
    Above the model's maximum a clip gets every stage, with a :class:`~rotcodec.bitrate.BitrateCapped`
    warning.
    """
    model.eval()  # no quantizer dropout or codebook updates while measuring
    # Stage i's input does not depend on how many stages follow, so one pass at the largest n_q
    # gives every bitrate's errors (a prefix of the stages). The pass is the greedy training
    # forward: under a beam the errors describe greedy coding, while usage and perplexity count
    # the codes actually sent.
    counts = sorted({wav.shape[0] for wav, _ in clips})

    def nominal(kbps: float | None) -> float:  # the file total of the set's clips (fails below one stage)
        return max(nominal_kbps(model, stages_for_kbps(model, kbps, c, warn=False), c) for c in counts)

    names = [f"rotcodec {nominal(k):g} kbps" for k in kbps_list]  # before any work
    top = max(stages_for_kbps(model, k, 1, warn=False) for k in kbps_list)  # mono: the most stages
    errors = [stage_errors(model, wav, sr, top) for wav, sr in clips]
    scores = []
    for kbps, name in zip(kbps_list, names):
        codes: list[np.ndarray] = []

        def roundtrip(wav: np.ndarray, sr: int, kbps=kbps, codes=codes) -> tuple[np.ndarray, int]:
            data = api.compress(wav, sr, model, kbps=kbps, beam=beam)
            codes.append(loads(data)[1])
            return api.decompress(data, model)[0].numpy(), len(data)

        score = score_clips(name, kbps, clips, roundtrip, on_decoded)
        n_q = max(c.shape[1] for c in codes)

        def total(field: str) -> np.ndarray:  # frame-weighted sum over the clips, first n_q stages
            return sum(np.asarray(getattr(s, field)[:n_q]) * s.frames for s in errors)

        score.usage, score.perplexity = stage_stats(codes, model.config.quantizer.codebook_size)
        n = max(sum(s.frames for s in errors), 1)
        score.qerr = (total("err") / n).tolist()
        score.qerr_rel = (total("err") / np.maximum(total("energy"), 1e-30)).tolist()
        score.lam = (total("lam") / n).tolist()
        score.obtuse = (total("obtuse") / n).tolist()
        scores.append(score)
    return scores


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def usage_table(scores: list[Score]) -> str:
    """A markdown table, one row per score that has them, of per-stage codebook usage (%),
    perplexity and relative quantization error ||e - q||^2 / ||e||^2."""
    scores = [s for s in scores if s.usage]
    if not scores:
        return ""
    n = max(len(s.usage) for s in scores)
    lines = ["| codec | " + " | ".join(f"stage {q + 1}" for q in range(n)) + " |", "|---" * (n + 1) + "|"]
    for s in scores:
        rel = s.qerr_rel or [math.nan] * len(s.usage)
        cells = [f"{u:.1f}% / {p:.0f} / {r:.3f}" for u, p, r in zip(s.usage, s.perplexity, rel)]
        cells += [""] * (n - len(s.usage))
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
