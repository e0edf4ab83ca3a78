"""Training data: audio folders -> random fixed-length mono segments at the model rate.

Reproducible by construction: segment ``i`` of a run is drawn by a generator seeded with
``(seed, i)``, so a resumed run (or any number of DataLoader workers or DDP ranks) sees exactly the
segments an uninterrupted run would. Files are split into train/valid by a hash of their path
relative to the folder they were found in, so the split never depends on order, machine or run.
"""

from __future__ import annotations

import logging
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
import torch
from torch.utils.data import Dataset, Sampler

from rotcodec.coding.conditioning import condition
from rotcodec.io.audio import resample
from rotcodec.train.augment import AugmentConfig, augment, speed_span

__all__ = ["AudioFile", "scan_audio", "split_files", "file_weights", "SegmentDataset", "ValidSet", "StepSampler",
           "normalize_loudness"]

log = logging.getLogger("rotcodec.train")
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}


@dataclass(frozen=True)
class AudioFile:
    path: str
    key: str  # path relative to its root folder: what the split hashes
    sample_rate: int
    frames: int
    root: str = ""  # the --data folder (or manifest) it was found under: what folder weights match



def _list(root: Path) -> list[Path]:
    if root.is_file():  # a manifest: one audio path per line, relative to the manifest's folder
        lines = [ln.strip() for ln in root.read_text().splitlines()]
        return [(root.parent / ln) for ln in lines if ln and not ln.startswith("#")]
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())


def scan_audio(roots: list[str | os.PathLike], min_seconds: float = 0.1) -> list[AudioFile]:
    """All readable audio files under the folders (or manifest files) in ``roots``.

    Files soundfile cannot open are skipped with a warning; raises ``FileNotFoundError`` for a
    missing root and ``ValueError`` when nothing usable is found.
    """
    found: list[AudioFile] = []
    for root in map(Path, roots):
        if not root.exists():
            raise FileNotFoundError(f"no such data folder or manifest: {root}")
        base = root.parent if root.is_file() else root
        for p in _list(root):
            try:
                info = sf.info(str(p))
            except Exception as err:  # soundfile raises several types for bad files
                log.warning("skipping %s: %s", p, str(err).splitlines()[0] if str(err) else type(err).__name__)
                continue
            if info.frames >= min_seconds * info.samplerate:
                key = os.path.relpath(p, base)
                found.append(AudioFile(str(p), key, int(info.samplerate), int(info.frames), str(root)))
    if not found:
        raise ValueError(f"no usable audio files (>= {min_seconds} s) under {', '.join(map(str, roots))}")
    return found


def split_files(files: list[AudioFile], valid_percent: float) -> tuple[list[AudioFile], list[AudioFile]]:
    """Deterministic train/valid split by CRC32 of each file's relative path."""
    valid = [f for f in files if zlib.crc32(f.key.encode()) % 10_000 < valid_percent * 100]
    keys = {f.key for f in valid}
    train = [f for f in files if f.key not in keys]
    if not train:
        raise ValueError("every file landed in the validation split; lower data.valid_percent or add files")
    return train, valid


def _matches(root: str, name: str) -> bool:
    parts = Path(root).parts
    return name in parts or str(Path(root)).endswith(name)


def file_weights(files: list[AudioFile], folder_weights: dict[str, float] | None = None) -> torch.Tensor:
    """Sampling weight of each file: its duration, and with ``folder_weights`` each ``--data`` folder's
    files together get that folder's share (a key matches a folder when it is one of the folder's path
    parts, e.g. ``speech16k`` matches ``~/corpus/speech16k/train``; within a folder, by duration).

    Raises ``ValueError`` when a folder matches no key or several, or a weight is not positive."""
    seconds = torch.tensor([f.frames / f.sample_rate for f in files], dtype=torch.float64)
    if not folder_weights:
        return seconds
    bad = {k: v for k, v in folder_weights.items() if not (isinstance(v, (int, float)) and v > 0)}
    if bad:
        raise ValueError(f"data.weights must be positive numbers, got {bad}")
    share: dict[str, float] = {}
    for root in dict.fromkeys(f.root for f in files):
        keys = [k for k in folder_weights if _matches(root, k)]
        if len(keys) != 1:
            raise ValueError(f"data folder {root} matches {'no key' if not keys else 'several keys ' + str(keys)} "
                             f"of data.weights ({', '.join(folder_weights)}); name each folder once")
        share[root] = float(folder_weights[keys[0]])
    out = seconds.clone()
    for root, w in share.items():
        mask = torch.tensor([f.root == root for f in files])
        out[mask] = seconds[mask] / seconds[mask].sum() * w
    return out / out.sum()


def normalize_loudness(wav: torch.Tensor, target_db: float, max_gain_db: float = 30.0) -> torch.Tensor:
    """Scale ``wav [..., T]`` to an RMS of ``target_db`` dBFS (gain capped, peaks kept under 1)."""
    rms = wav.pow(2).mean().sqrt().clamp_min(1e-8)
    gain = min(10 ** (target_db / 20) / float(rms), 10 ** (max_gain_db / 20))
    peak = float(wav.abs().max()) * gain
    if peak > 0.99:
        gain *= 0.99 / peak
    return wav * gain


def read_segment(f: AudioFile, start: int, frames: int, sample_rate: int) -> torch.Tensor:
    """``frames`` samples at ``sample_rate`` (mono mix, zero-padded) from ``f`` starting at ``start``
    (in the file's own samples). Returns ``[1, frames]``."""
    n_src = math.ceil(frames * f.sample_rate / sample_rate)
    data, _ = sf.read(f.path, start=start, frames=n_src, dtype="float32", always_2d=True)
    wav = torch.from_numpy(data.T.copy()).mean(0, keepdim=True)
    wav = torch.nan_to_num(wav, nan=0.0, posinf=0.0, neginf=0.0)
    wav = resample(wav, f.sample_rate, sample_rate)[:, :frames]
    return torch.nn.functional.pad(wav, (0, frames - wav.shape[-1]))


class SegmentDataset(Dataset):
    """Item ``i`` is a random segment ``[1, segment]`` drawn by a generator seeded with ``(seed, i)``.

    Files are picked with probability ``weights`` (default: proportional to their duration, see
    :func:`file_weights`), augmented (``augment``), then conditioned as the encoder conditions its
    input (``condition_block`` samples per gain block, the block edges at a random place in the
    segment; 0: the older scheme, the whole segment scaled to an RMS drawn from ``loudness_db``).
    A file that fails to decode is skipped with a warning (another file is drawn).
    """

    def __init__(self, files: list[AudioFile], sample_rate: int, segment_seconds: float,
                 loudness_db: tuple[float, float], seed: int = 0, weights: torch.Tensor | None = None,
                 augment: AugmentConfig | None = None, condition_block: int = 0):
        self.files = files
        self.sample_rate = sample_rate
        self.segment = int(round(segment_seconds * sample_rate))
        self.loudness_db = loudness_db
        self.seed = seed
        self.weights = file_weights(files) if weights is None else weights
        self.augment = augment if augment is not None and augment.active else None
        self.condition_block = condition_block

    def __len__(self) -> int:  # items are indexed by a global counter; the sampler bounds it
        return 2**62

    def __getitem__(self, index: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(index))
        for _ in range(10):
            f = self.files[int(torch.multinomial(self.weights, 1, generator=g))]
            frames = math.ceil(self.segment * (speed_span(self.augment) if self.augment else 1.0))
            span = math.ceil(frames * f.sample_rate / self.sample_rate)
            start = int(torch.randint(0, max(1, f.frames - span + 1), (1,), generator=g))
            target = float(torch.empty(1).uniform_(*self.loudness_db, generator=g))
            try:
                wav = read_segment(f, start, frames, self.sample_rate)
            except Exception as err:
                log.warning("skipping %s: %s", f.path, str(err).splitlines()[0] if str(err) else type(err).__name__)
                continue
            if self.augment is not None:
                wav = augment(wav, self.sample_rate, self.augment, g, self.segment)
            wav = wav[:, : self.segment]
            if not self.condition_block:
                return normalize_loudness(wav, target)
            first = int(torch.randint(1, self.condition_block + 1, (1,), generator=g))
            return condition(wav, self.condition_block, first)[0]
        raise RuntimeError("10 files in a row failed to decode; check the data folders")


class StepSampler(Sampler[int]):
    """Yields global item indices for steps ``start_step, start_step + 1, ...``: rank ``r`` of ``w``
    gets items ``(step * w + r) * batch + j``, so ranks never share a segment."""

    def __init__(self, batch_size: int, start_step: int = 0, rank: int = 0, world_size: int = 1):
        self.batch_size, self.start_step, self.rank, self.world_size = batch_size, start_step, rank, world_size

    def __iter__(self):
        step = self.start_step
        while True:
            base = (step * self.world_size + self.rank) * self.batch_size
            yield from range(base, base + self.batch_size)
            step += 1

    def __len__(self) -> int:
        return 2**62


class ValidSet:
    """Fixed validation clips: the first ``seconds`` of up to ``max_clips`` held-out files,
    conditioned as the encoder does (``condition_block`` samples per gain block), or with
    ``condition_block=0`` loudness-normalised to ``loudness_db``. ``clips`` is a list of ``[1, T]`` tensors."""

    def __init__(self, files: list[AudioFile], sample_rate: int, seconds: float, max_clips: int, loudness_db: float,
                 condition_block: int = 0):
        self.clips: list[torch.Tensor] = []
        self.names: list[str] = []
        for f in files[:max_clips]:
            frames = min(int(seconds * sample_rate), int(f.frames * sample_rate / f.sample_rate))
            try:
                wav = read_segment(f, 0, frames, sample_rate)
            except Exception as err:
                log.warning("skipping validation file %s: %s", f.path, err)
                continue
            self.clips.append(condition(wav, condition_block)[0] if condition_block
                              else normalize_loudness(wav, loudness_db))
            self.names.append(f.key)

    def __len__(self) -> int:
        return len(self.clips)
