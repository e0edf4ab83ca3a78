"""Atomic file writes, shared by model saving, training checkpoints and user outputs (``.rcq`` files,
JSON reports), the safe reading of the files ``torch.save`` wrote (:func:`load_tensors`), and the
audio files of a folder (:func:`audio_files`)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO

from rotcodec.errors import FormatError, OutputExists

__all__ = ["AUDIO_SUFFIXES", "atomic_open", "atomic_write", "atomic_torch_save", "atomic_write_text", "atomic_writer",
           "audio_files", "check_output", "load_tensors"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def audio_files(folder: str | os.PathLike, suffixes: tuple[str, ...] = AUDIO_SUFFIXES) -> list[Path]:
    """The files under ``folder`` (recursively) whose suffix, in any case, is one of ``suffixes``,
    as sorted paths relative to ``folder``; FileNotFoundError when ``folder`` is not a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` atomically (see :func:`atomic_write`)."""
    import torch  # here, so that the command line's --help does not load torch

    atomic_write(path, lambda f: torch.save(obj, f))


def load_tensors(path: str | os.PathLike, map_location: Any = "cpu", what: str = "file") -> Any:
    """``torch.load(path, weights_only=True)``: tensors, numbers, strings and containers of them.

    A file that holds anything else (Python objects, which unpickling would construct by running
    code) raises :class:`~rotcodec.errors.FormatError` saying that rotcodec never unpickles such
    files: torch's own message suggests ``weights_only=False``, which a codec reading files from
    strangers must never follow. ``what`` names the file in that message ("model file"). Other
    failures (garbage, truncation) raise as ``torch.load`` raises them.
    """
    import pickle

    import torch  # here, so that the command line's --help does not load torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # the weights-only unpickler refused the file, or it is no pickle
        try:  # names the objects of a zip-format file (the format torch.save writes)
            objects = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # noqa: BLE001 - an older format or a damaged file: no names to give
            objects = []
        held = f"Python objects ({', '.join(objects[:3])})" if objects else "something other than tensors and data"
        raise FormatError(f"{path} is not a loadable {what}: it holds {held}, and rotcodec never unpickles "
                          "such files (loading them could run any code)") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """``write(f)`` into a temp file in the target folder, fsync, then rename over ``path``
    (see :func:`atomic_open`)."""
    with atomic_open(path) as f:
        write(f)


@contextmanager
def atomic_open(path: str | os.PathLike, before_replace: Callable[[], Any] | None = None) -> Iterator[BinaryIO]:
    """``with atomic_open(path) as f:`` write bytes to a temp file in the target folder; when the
    block succeeds, fsync it, call ``before_replace()`` (a last check that may raise) and rename it
    over ``path``. On any error the temp file is removed and ``path`` is left as it was.

    A crash at any point leaves either the old file or the new one, never a partial file. The new
    file gets the permissions ``open()`` would give it (the umask's), not a temp file's 0600.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder does not exist: {path.parent}")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    f = open(tmp, "xb")  # a name taken already raises here, before anything is ours to remove
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_writer(path: str | os.PathLike, force: bool = False) -> Iterator[IO[bytes]]:
    """``with atomic_writer(path, force) as f:`` a user's output: :func:`check_output` first (no
    overwrite without ``force``), bytes to a temp file renamed over ``path`` only when the block
    succeeds (:func:`atomic_open`), the check repeated just before the rename (the
    file may have appeared meanwhile); on any error the temp file is removed."""
    path = Path(path)
    check_output(path, force)
    with atomic_open(path, before_replace=lambda: check_output(path, force)) as f:
        yield f


def check_output(path: Path, force: bool) -> None:
    """Raise unless ``path`` can be written: its folder exists, it is not a folder, and it does
    not exist yet unless ``force`` (FileNotFoundError, IsADirectoryError, and
    :class:`~rotcodec.errors.OutputExists`, a FileExistsError that names ``force`` for the API or
    the command line)."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"folder does not exist: {parent}")
    if path.is_dir():
        raise IsADirectoryError(f"output is a directory: {path}")
    if path.exists() and not force:
        raise OutputExists("{path} already exists; use {force} to overwrite it", path=path)
