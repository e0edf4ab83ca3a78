"""Finding context models: the ones shipped beside the bundled codecs, by id and hash.

A context model ships as ``rotcodec/pretrained/<codec>.entropy.npz`` (id ``<codec>.entropy``)
and records the weights hash of the codec whose codes it was fitted to; an entropy-coded ``.rcq``
names its context model by id and hash, so it decodes without options. A refit that replaces it
keeps the one before beside it as ``<codec>.entropy.<hash>.npz`` (files coded with it name that
hash), and its id and hash join ``rotcodec.io.container.KNOWN_CONTEXT_MODELS``. Models are loaded
once and kept. numpy only (no torch).
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from rotcodec.entropy.model import IntContextModel, load_context_model
from rotcodec.errors import FormatError

__all__ = ["SUFFIX", "find", "for_codec", "has", "load", "model_id", "register", "unregister"]

SUFFIX = ".entropy"
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,200}")
_cache: dict[tuple[str, int, int], IntContextModel] = {}
_registered: dict[str, IntContextModel] = {}


def _folder():
    return resources.files("rotcodec").joinpath("pretrained")


def load(path: str | os.PathLike) -> IntContextModel:
    """The context model in the ``.npz`` file ``path``, loaded once per file version."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _cache:
        _cache[key] = load_context_model(path)
    return _cache[key]


def model_id(path: str | os.PathLike) -> str:
    """The id a context model file is named by in headers: its file name without ``.npz``."""
    name = Path(path).name
    return name[:-4] if name.endswith(".npz") else name


def register(ctx_id: str, model: IntContextModel) -> None:
    """Make ``model`` findable as ``ctx_id`` in this process (before the bundled files): a context
    model of one's own, fitted to a model of one's own (``python -m rotcodec.entropy.fit``)."""
    if not _ID_RE.fullmatch(ctx_id):
        raise ValueError(f"a context model id is letters, digits and ._- (1..201 characters), got {ctx_id!r}")
    _registered[ctx_id] = model


def unregister(ctx_id: str) -> None:
    """Forget the context model :func:`register` gave ``ctx_id`` (the bundled one, if any, is
    found again); nothing happens when none was registered."""
    _registered.pop(ctx_id, None)


def find(ctx_id: str, digest: str) -> IntContextModel:
    """The context model ``ctx_id`` with hash ``digest``, registered (:func:`register`) or bundled;
    FormatError naming both when there is none (or another version of it)."""
    where = f"this file was entropy-coded with context model {ctx_id!r} (hash {digest})"
    if ctx_id in _registered and _registered[ctx_id].digest == digest:
        return _registered[ctx_id]
    path = _folder().joinpath(f"{ctx_id}.npz")
    if _ID_RE.fullmatch(ctx_id) and re.fullmatch(r"[0-9a-f]{1,64}", digest):
        older = _folder().joinpath(f"{ctx_id}.{digest}.npz")  # a version a refit replaced
        if older.is_file():
            path = older
    if not _ID_RE.fullmatch(ctx_id) or not path.is_file():
        raise FormatError(f"{where}, which this rotcodec does not have; decode it with the rotcodec "
                          "version that made it, or register that context model "
                          "(rotcodec.entropy.bundled.register)")
    model = load(Path(str(path)))
    if model.digest != digest:
        raise FormatError(f"{where}; this rotcodec's {ctx_id!r} is another version (hash {model.digest}); "
                          "decode it with the rotcodec version that made it")
    return model


def has(codec_name: str) -> bool:
    """Whether :func:`for_codec` finds a context model for ``codec_name``, without loading it."""
    ctx_id = f"{codec_name}{SUFFIX}"
    return ctx_id in _registered or bool(_ID_RE.fullmatch(codec_name)
                                         and _folder().joinpath(f"{ctx_id}.npz").is_file())


def for_codec(codec_name: str) -> tuple[str, IntContextModel] | None:
    """``(id, model)`` of the context model of the codec ``codec_name``: registered as
    ``<codec_name>.entropy`` (:func:`register`) or bundled; None when there is none.

    Matched by name, not by weights: a context model codes any codes of its codebook size
    correctly (the file names it by hash, so the decoder uses the same one); fitted to the
    weights it codes (``meta["codec_hash"]``) it saves the most, and a round that ships new
    weights refits it (``recipes/entropy/stft16k_cpu.toml``)."""
    ctx_id = f"{codec_name}{SUFFIX}"
    if ctx_id in _registered:
        return ctx_id, _registered[ctx_id]
    path = _folder().joinpath(f"{ctx_id}.npz")
    if not _ID_RE.fullmatch(codec_name) or not path.is_file():
        return None
    return ctx_id, load(Path(str(path)))
