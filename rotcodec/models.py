"""Finding models and recipes: bundled models by name, the default model, model files by path.

::

    from rotcodec import models
    models.bundled_models()          # ["audio24k-cpu", "speech16k-cpu", "stft16k-cpu"]
    models.list_models()             # [ModelInfo(name, sample_rate, channels, stages, kbps, about), ...]
    codec = models.load_model("stft16k-cpu")          # a fresh model the caller owns
    codec = models.resolve("runs/mine/model.pt")      # shared, loaded once per file version

A bundled model is a file ``rotcodec/pretrained/<name>.pt`` (written by :meth:`Codec.save`) and one
line ``<name>: what it is for`` in ``rotcodec/pretrained/models.txt``; its rate, stages and
bitrates are read from the file's own config, so adding a model takes nothing else. The default
model is named in ``rotcodec/pretrained/default.txt``.

Models given as a path or name to the coding calls (``rotcodec.compress(..., model="m.pt")``)
are loaded once and kept, with their weights hash, keyed by the file's path, size and modification
time: coding a folder file by file through the API loads the model once, and a file rewritten
in place (a new training round) is loaded again.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from rotcodec.errors import FormatError, NoModel
from rotcodec.model.codec import Codec
from rotcodec.model.loading import load_model_file, weights_hash

__all__ = ["NO_MODEL_MESSAGE", "ModelArg", "ModelInfo", "bundled_models", "bundled_recipes", "recipe_path",
           "default_name", "check_device", "load_model", "resolve", "resolve_hashed", "for_header", "descriptions",
           "list_models"]

_NO_MODEL = ("no model given and no bundled model found; pass {model} "
             "(a file written by `rotcodec train` or Codec.save)")
NO_MODEL_MESSAGE = str(NoModel(_NO_MODEL))  # as the API words it (the CLI: ``--model PATH``)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
CACHE_SIZE = 4  # models kept by resolve(); each is a few MB to a few hundred
ModelArg = Codec | str | os.PathLike | None


# ----- where things are --------------------------------------------------------------------------
def _pretrained_dir():
    """The folder of bundled models, ``rotcodec/pretrained/`` (a Traversable; may not exist)."""
    return resources.files("rotcodec").joinpath("pretrained")


def _pretrained(filename: str):
    return _pretrained_dir().joinpath(filename)


def _is_bundled(name: str) -> bool:
    return bool(NAME_RE.fullmatch(name)) and _pretrained(f"{name}.pt").is_file()


def bundled_models() -> list[str]:
    """Names of the models shipped in ``rotcodec/pretrained/`` (``<name>.pt``), sorted."""
    folder = _pretrained_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".pt") and p.is_file())


def _recipes_dir():
    """The folder of bundled training recipes, ``rotcodec/recipes/`` (a Traversable). In the source
    tree it is a link to the top-level ``recipes/`` folder, their one copy; a wheel or a regular
    install carries the files themselves (package data)."""
    return resources.files("rotcodec").joinpath("recipes")


def bundled_recipes() -> list[str]:
    """Names of the bundled training recipes (``rotcodec/recipes/<name>.toml``), sorted."""
    folder = _recipes_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml") and p.is_file())


def recipe_path(name_or_path: str | os.PathLike) -> Path:
    """The recipe file for ``name_or_path``: an existing ``.toml`` file as given, else the bundled
    recipe of that name (``stft16k_cpu``), from any install (an unpacked one: not a zip).

    Raises:
        FileNotFoundError: neither (the message lists the bundled names).
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    text = os.fspath(name_or_path)
    if NAME_RE.fullmatch(text) and _recipes_dir().joinpath(f"{text}.toml").is_file():
        return Path(str(_recipes_dir().joinpath(f"{text}.toml")))
    raise FileNotFoundError(f"no such recipe file or bundled recipe: {text}; bundled recipes: "
                            f"{', '.join(bundled_recipes()) or 'none'}")


def _lines(filename: str) -> list[str]:
    """The non-blank, non-comment lines of a text file in ``pretrained/`` (none if it is missing)."""
    note = _pretrained(filename)
    if not note.is_file():
        return []
    stripped = (line.strip() for line in note.read_text(encoding="utf-8").splitlines())
    return [line for line in stripped if line and not line.startswith("#")]


def default_name() -> str | None:
    """The default bundled model: the name in ``pretrained/default.txt``, else ``default``."""
    named = _lines("default.txt")
    if named:
        return named[0]
    return "default" if _pretrained("default.pt").is_file() else None


# ----- loading -----------------------------------------------------------------------------------
def _load_file(path: Path, device: str | torch.device) -> Codec:
    """:func:`load_model_file`, with every failure to parse the file reported as FormatError.

    ``torch.load(weights_only=True)`` raises a zoo of exception types on arbitrary bytes
    (KeyError, IndexError, ... besides those ``load_model_file`` already converts).
    """
    try:
        return load_model_file(path, device)
    except (FormatError, OSError, MemoryError):
        raise
    except Exception as err:  # noqa: BLE001 - any other parse failure means "not a model file"
        detail = " ".join(str(err).split()) or type(err).__name__
        raise FormatError(f"{path} is not a loadable rotcodec model file ({type(err).__name__}: {detail})") from None


def _file_of(name_or_path: str | os.PathLike | None) -> Path:
    """The model file ``name_or_path`` means: a path, a bundled name, or the default (None)."""
    if name_or_path is None:
        name = default_name()
        if name is None or not _pretrained(f"{name}.pt").is_file():
            raise NoModel(_NO_MODEL)
        return Path(str(_pretrained(f"{name}.pt")))
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"model must be a Codec, a path or a name, got {type(name_or_path).__name__}")
    path = Path(name_or_path)
    if path.is_dir():
        raise IsADirectoryError(f"model path is a directory, not a model file: {path}")
    if path.is_file():
        return path
    text = os.fspath(name_or_path)
    if _is_bundled(text):
        return Path(str(_pretrained(f"{text}.pt")))
    bundled = bundled_models()
    known = f"; bundled models: {', '.join(bundled)}" if bundled else ""
    raise FileNotFoundError(f"no such model file or bundled model: {text}{known}")


def load_model(name_or_path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Codec:
    """Load a model in eval mode on ``device``: a new object, the caller's to change or train.

    Args:
        name_or_path: a model file written by :meth:`Codec.save` (or ``rotcodec train``); or the
            name of a model bundled in ``rotcodec/pretrained/<name>.pt``; or None for the default
            bundled model (named in ``rotcodec/pretrained/default.txt``).

    Raises:
        FileNotFoundError: no such file or bundled model; with None, no bundled model at all
            (the message says how to get one).
        FormatError: the file is not a valid rotcodec model file.
    """
    return _load_file(_file_of(name_or_path), device)


def check_device(device: str | torch.device) -> torch.device:
    """``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``) as a :class:`torch.device`; ValueError for a
    name torch does not know, or CUDA on a machine without it."""
    try:
        checked = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"unknown device {device!r} (use cpu, cuda or cuda:N)") from None
    if checked.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return checked


_CACHE: OrderedDict[tuple, tuple[Codec, str]] = OrderedDict()


def _cached(model: str | os.PathLike | None, device: str | torch.device) -> tuple[Codec, str]:
    path = _file_of(model)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, str(check_device(device)))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    codec = _load_file(path, device)
    _CACHE[key] = codec, weights_hash(codec)
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return _CACHE[key]


def resolve(model: ModelArg, device: str | torch.device = "cpu") -> Codec:
    """The :class:`Codec` that ``model`` names: itself if it is one, else the model file or bundled
    model (None: the default), loaded once per file version and device and shared by every later
    call: do not change it (use :func:`load_model` for a model of your own)."""
    return resolve_hashed(model, device)[0]


def resolve_hashed(model: ModelArg, device: str | torch.device = "cpu") -> tuple[Codec, str | None]:
    """:func:`resolve`, with the weights hash of a model loaded here (None for a :class:`Codec`
    given: its weights may have changed since any earlier call, so the caller hashes them)."""
    if isinstance(model, Codec):
        return model, None
    return _cached(model, device)


def for_header(header_model: str, model: ModelArg = None, device: str | torch.device = "cpu",
               ) -> tuple[Codec, str | None]:
    """The model to decode a file whose header names ``header_model`` (``"name@version"``):
    ``model`` if given, else the bundled model of that name when it ships with rotcodec, else the
    default bundled model; with its hash as in :func:`resolve_hashed`."""
    if model is None:
        name = header_model.rsplit("@", 1)[0]
        if _is_bundled(name):
            return _cached(name, device)
    return resolve_hashed(model, device)


# ----- the list ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelInfo:
    """A bundled model: what :func:`list_models` tells about it, from its file's config and its
    line in ``pretrained/models.txt``.

    ``channels`` is what the model codes at once (1: mono; a file of C channels is coded channel
    by channel, so its bitrate is C times a channel's); ``kbps`` is ``(one stage, all stages)``
    of one channel; ``about`` says what it is for; ``entropy``: a context model ships for it
    (``compress --entropy``)."""

    name: str
    sample_rate: int
    channels: int
    stages: int
    codebook_size: int
    frame_rate: float
    kbps: tuple[float, float]
    default: bool
    about: str
    entropy: bool = False

    def line(self) -> str:
        marks = ["default"] * self.default + ["--entropy"] * self.entropy
        mark = f" ({', '.join(marks)})" if marks else ""
        return (f"{self.name}{mark}: {self.sample_rate / 1000:g} kHz, "
                f"{'mono' if self.channels == 1 else f'{self.channels} channels'}, "
                f"{self.kbps[0]:g}-{self.kbps[1]:g} kbps a channel ({self.stages} stages x "
                f"{self.codebook_size} codes at {self.frame_rate:g} Hz); {self.about}")


def descriptions() -> dict[str, str]:
    """``{name: what it is for}`` from ``pretrained/models.txt`` (lines ``name: text``)."""
    out = {}
    for line in _lines("models.txt"):
        name, sep, text = line.partition(":")
        if sep:
            out[name.strip()] = text.strip()
    return out


def list_models() -> list[ModelInfo]:
    """Every bundled model (:func:`bundled_models`) with its rate, stages and bitrates, read from
    its file (each is loaded, once: :func:`resolve` keeps it), and what it is for."""
    from rotcodec.entropy import bundled

    about, default = descriptions(), default_name()
    infos = []
    for name in bundled_models():
        codec = resolve(name)
        q = codec.config.quantizer
        infos.append(ModelInfo(name, codec.sample_rate, 1, codec.n_q, q.codebook_size, codec.frame_rate,
                               (codec.bitrate(1) / 1000, codec.bitrate() / 1000), name == default,
                               about.get(name, "(no description in pretrained/models.txt)"),
                               bundled.has(codec.config.name)))
    return infos
