"""Audio file input/output via soundfile, with one-line :class:`AudioError` messages.

Arrays are channel-first everywhere: ``[C, T]`` float32 (C channels, T samples).
Reading supports whatever libsndfile reads (wav, flac, ogg, mp3, aiff, ...; 8/16/24/32-bit int and float).
Writing supports ``.wav``, ``.flac`` and ``.ogg``; it never overwrites without ``force`` and
never leaves a half-written file: data goes to a temp file in the target folder, which is
renamed over the target (``os.replace``) only once complete, and removed on any failure.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from rotcodec.errors import AudioError

__all__ = [
    "AudioWriter", "audio_info", "iter_audio_blocks", "read_audio", "resample",
    "to_tensor_2d", "write_audio",
]

# extension -> (soundfile format, default subtype)
_WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}
_SF_ERRORS = (sf.SoundFileError, RuntimeError, TypeError, ValueError)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _check_readable(path: str | os.PathLike) -> Path:
    """Raise AudioError unless ``path`` is an existing, readable regular file."""
    p = Path(path)
    if not p.exists():
        raise AudioError(f"no such file: {p}")
    if p.is_dir():
        raise AudioError(f"is a directory, not an audio file: {p}")
    try:
        with open(p, "rb"):
            pass
    except OSError as err:
        raise AudioError(f"cannot read {p}: {err.strerror or _one_line(err)}") from None
    return p


def _open(path: str | os.PathLike) -> sf.SoundFile:
    """Open ``path`` for reading; AudioError if missing, unreadable, empty or not audio."""
    p = _check_readable(path)
    try:
        snd = sf.SoundFile(p)
    except _SF_ERRORS as err:
        raise AudioError(f"not a readable audio file: {p} ({_one_line(err)})") from None
    if snd.frames == 0:
        snd.close()
        raise AudioError(f"audio file has no samples: {p}")
    return snd


def _check_finite(block: np.ndarray, path: Any) -> None:
    if not np.isfinite(block).all():
        raise AudioError(f"audio file contains NaN or infinite samples: {path}")


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """Return ``(sample_rate, channels, frames)`` of an audio file without reading samples.

    Raises:
        AudioError: missing, a directory, unreadable, not audio, or zero samples.
    """
    with _open(path) as snd:
        return snd.samplerate, snd.channels, snd.frames


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a whole audio file.

    Returns:
        ``(wav, sample_rate)``: ``wav`` float32 ``[C, T]``, integer formats scaled to [-1, 1).
        Float files may hold values beyond +-1; they are returned as they are.

    Raises:
        AudioError: missing, a directory, unreadable, not audio, zero samples, or NaN/Inf.
    """
    with _open(path) as snd:
        try:
            data = snd.read(dtype="float32", always_2d=True)  # [T, C]
        except _SF_ERRORS as err:
            raise AudioError(f"cannot read audio from {path}: {_one_line(err)}") from None
        sample_rate = snd.samplerate
    if data.shape[0] == 0:
        raise AudioError(f"audio file has no samples: {path}")
    _check_finite(data, path)
    return np.ascontiguousarray(data.T), sample_rate


def iter_audio_blocks(path: str | os.PathLike, block_frames: int) -> Iterator[np.ndarray]:
    """Read a file in blocks of ``block_frames`` samples, for bounded memory on long files.

    The file is checked (AudioError as in :func:`read_audio`) when this is called, not at
    the first ``next``. Yields float32 ``[C, n]`` blocks with ``n == block_frames`` except
    for the last one; a block with NaN/Inf raises AudioError when it is reached.
    """
    if isinstance(block_frames, bool) or not isinstance(block_frames, int) or block_frames < 1:
        raise ValueError(f"block_frames must be a positive int, got {block_frames!r}")
    audio_info(path)
    return _blocks(path, block_frames)


def _blocks(path: str | os.PathLike, block_frames: int) -> Iterator[np.ndarray]:
    with _open(path) as snd:
        while True:
            try:
                block = snd.read(block_frames, dtype="float32", always_2d=True)  # [n, C]
            except _SF_ERRORS as err:
                raise AudioError(f"cannot read audio from {path}: {_one_line(err)}") from None
            if block.shape[0] == 0:
                return
            _check_finite(block, path)
            yield np.ascontiguousarray(block.T)


def to_tensor_2d(wav: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Return ``wav`` as a float32 tensor ``[C, T]`` (a ``[T]`` input becomes ``[1, T]``).

    May share memory with a float32 input. Raises ValueError for ranks other than 1 or 2 or
    integer dtypes, TypeError for other types, AudioError when empty or non-finite.
    """
    if isinstance(wav, np.ndarray):
        if wav.dtype.kind != "f":
            raise ValueError(f"expected floating-point samples, got dtype {wav.dtype}")
        wav = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    elif isinstance(wav, torch.Tensor):
        if not wav.is_floating_point():
            raise ValueError(f"expected floating-point samples, got dtype {wav.dtype}")
        wav = wav.detach().to(torch.float32)
    else:
        raise TypeError(f"expected a torch.Tensor or numpy array, got {type(wav).__name__}")
    if wav.dim() == 1:
        wav = wav.unsqueeze(0)
    elif wav.dim() != 2:
        raise ValueError(f"expected audio of shape [T] or [C, T], got shape {tuple(wav.shape)}")
    if wav.numel() == 0:
        raise AudioError(f"audio is empty (shape {tuple(wav.shape)})")
    if not torch.isfinite(wav).all():
        raise AudioError("audio contains NaN or infinite samples")
    return wav


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Resample ``wav [C, T]`` from ``orig_sr`` to ``new_sr`` Hz (band-limited sinc).

    Returns ``wav`` itself when the rates are equal, else ``[C, ceil(T * new_sr / orig_sr)]``.
    """
    for name, sr in (("orig_sr", orig_sr), ("new_sr", new_sr)):
        if isinstance(sr, bool) or not isinstance(sr, int) or sr < 1:
            raise ValueError(f"{name} must be a positive int, got {sr!r}")
    if orig_sr == new_sr:
        return wav
    import torchaudio.functional  # deferred: only resampling needs torchaudio

    return torchaudio.functional.resample(wav, orig_sr, new_sr)


def _target(path: str | os.PathLike, force: bool, subtype: str | None) -> tuple[Path, str, str]:
    """Validate an output path; return ``(path, format, subtype)``."""
    p = Path(path)
    fmt_sub = _WRITE_FORMATS.get(p.suffix.lower())
    if fmt_sub is None:
        raise AudioError(f"unsupported audio extension {p.suffix!r} for {p} (use .wav, .flac or .ogg)")
    fmt, default_subtype = fmt_sub
    subtype = default_subtype if subtype is None else subtype.upper()
    if not sf.check_format(fmt, subtype):
        raise AudioError(f"subtype {subtype} cannot be written to {p.suffix} files")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise AudioError(f"folder does not exist: {parent}")
    _check_overwrite(p, force)
    return p, fmt, subtype


def _check_overwrite(p: Path, force: bool) -> None:
    if p.is_dir():
        raise AudioError(f"output is a directory: {p}")
    if p.exists() and not force:
        raise FileExistsError(f"{p} already exists; use force=True to overwrite it")


class AudioWriter:
    """Write an audio file block by block, atomically (temp file + rename on success).

    Usage::

        with AudioWriter("out.flac", 24000, channels=2) as w:
            for block in blocks:          # each [C, n] float, torch or numpy
                w.write(block)

    The target appears only when the ``with`` block exits without an exception; otherwise
    the temp file is removed and the target is left untouched. ``force`` and ``subtype``
    behave as in :func:`write_audio`.
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int, channels: int,
                 force: bool = False, subtype: str | None = None) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1:
            raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        self.path, self._format, self.subtype = _target(path, force, subtype)
        self.sample_rate, self.channels, self.force = sample_rate, channels, force
        self._clip = self.subtype not in ("FLOAT", "DOUBLE")  # integer/lossy formats saturate
        self._tmp: Path | None = None
        self._snd: sf.SoundFile | None = None

    def __enter__(self) -> "AudioWriter":
        name = f".{self.path.name}.{secrets.token_hex(4)}.tmp"
        self._tmp = self.path.with_name(name)
        try:
            self._snd = sf.SoundFile(self._tmp, "w", self.sample_rate, self.channels,
                                     self.subtype, format=self._format)
        except _SF_ERRORS as err:
            self._discard()
            raise AudioError(f"cannot write {self.path}: {_one_line(err)}") from None
        except BaseException:
            self._discard()
            raise
        return self

    def write(self, block: torch.Tensor | np.ndarray) -> None:
        """Append ``block`` ``[C, n]`` (or ``[n]`` for mono) float samples."""
        if self._snd is None:
            raise RuntimeError("AudioWriter.write() called outside its with-block")
        wav = to_tensor_2d(block)
        if wav.shape[0] != self.channels:
            raise ValueError(f"block has {wav.shape[0]} channels, writer expects {self.channels}")
        if self._clip:
            wav = wav.clamp(-1.0, 1.0)
        try:
            self._snd.write(np.ascontiguousarray(wav.cpu().numpy().T))  # soundfile wants [n, C]
        except (sf.SoundFileError, RuntimeError, OSError) as err:
            raise AudioError(f"cannot write {self.path}: {_one_line(err)}") from None

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._snd is not None:
                self._snd.close()
            if exc_type is None:
                _check_overwrite(self.path, self.force)  # it may have appeared meanwhile
                os.replace(self._tmp, self.path)
                self._tmp = None
        finally:
            self._discard()

    def _discard(self) -> None:
        if self._snd is not None and not self._snd.closed:
            self._snd.close()
        self._snd = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def write_audio(path: str | os.PathLike, wav: torch.Tensor | np.ndarray, sample_rate: int,
                force: bool = False, subtype: str | None = None) -> None:
    """Write ``wav`` ``[C, T]`` (or ``[T]``) float samples to ``path``, atomically.

    The format follows the extension: ``.wav`` / ``.flac`` (default subtype ``PCM_16``) or
    ``.ogg`` (default ``VORBIS``). Non-float subtypes clip samples to [-1, 1].

    Raises:
        FileExistsError: ``path`` exists and ``force`` is False.
        AudioError: unknown extension or subtype, missing parent folder, empty or non-finite
            audio, or a write error (no temp file is left behind).
    """
    data = to_tensor_2d(wav)
    with AudioWriter(path, sample_rate, data.shape[0], force=force, subtype=subtype) as w:
        w.write(data)
