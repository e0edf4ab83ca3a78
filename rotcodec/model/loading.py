"""Load a saved model file safely (``torch.load(weights_only=True)``), rebuilding it from its config."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from rotcodec.config import CodecConfig
from rotcodec.errors import FormatError
from rotcodec.files import load_tensors
from rotcodec.model.codec import MODEL_FORMAT, MODEL_VERSION, Codec

__all__ = ["load_model_file", "weights_hash"]


def load_model_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> Codec:
    """Read a file written by :meth:`Codec.save` and return the model in eval mode on ``device``.

    Raises ``FileNotFoundError`` for a missing file and :class:`FormatError` for anything that is
    not a valid rotcodec model file, including files holding Python objects (refused, never unpickled:
    :func:`~rotcodec.files.load_tensors`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    try:
        blob = load_tensors(path, device, "rotcodec model file")
    except FormatError:
        raise
    except Exception as err:  # torch.load raises many types for garbage (KeyError, AttributeError, ...)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FormatError(f"{path} is not a loadable rotcodec model file ({first})") from None
    if not isinstance(blob, dict) or blob.get("format") != MODEL_FORMAT:
        raise FormatError(f"{path} is not a rotcodec model file")
    version = blob.get("version")
    if not isinstance(version, int) or version > MODEL_VERSION:
        raise FormatError(f"{path} was written by a newer rotcodec (model format {version}); upgrade rotcodec")
    try:
        config = CodecConfig.from_dict(blob["config"])
        model = Codec(config)
        model.load_state_dict(blob["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise FormatError(f"{path}: invalid model file ({str(err).splitlines()[0]})") from None
    return model.to(device).eval()


def weights_hash(model: torch.nn.Module) -> str:
    """A short content hash (16 hex digits of SHA-256) of the model's state dict, in key order."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
