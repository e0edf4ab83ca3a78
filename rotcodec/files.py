"""Atomic file writes, shared by model saving, training checkpoints and user outputs (``.rcq`` files, JSON reports)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO

__all__ = ["atomic_open", "atomic_write", "atomic_torch_save", "atomic_write_text", "atomic_writer", "check_output"]


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` atomically (see :func:`atomic_write`)."""
    import torch  # here, so that the command line's --help does not load torch

    atomic_write(path, lambda f: torch.save(obj, f))


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
    not exist yet unless ``force`` (FileNotFoundError, IsADirectoryError, FileExistsError)."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"folder does not exist: {parent}")
    if path.is_dir():
        raise IsADirectoryError(f"output is a directory: {path}")
    if path.exists() and not force:
        raise FileExistsError(f"{path} already exists; use force=True to overwrite it")
