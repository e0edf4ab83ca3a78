"""Training checkpoints: everything needed to continue exactly, written atomically, loaded safely."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from rotcodec.errors import FormatError
from rotcodec.files import atomic_torch_save, load_tensors
from rotcodec.train.config import Recipe
from rotcodec.train.steps import Parts

__all__ = ["TrainState", "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "rotcodec-checkpoint"


@dataclass
class TrainState:
    """Loop counters: ``step`` is the number of completed steps."""

    step: int = 0
    bad_steps: int = 0


def save_checkpoint(path: str | os.PathLike, parts: Parts, state: TrainState, recipe: Recipe) -> None:
    """Write config, models, optimizers, schedulers, counters and RNG states (temp file + rename).

    The discriminators and their optimizer are left out when the recipe does not use them
    (``loss.adversarial = false``): most of a checkpoint's bytes otherwise."""
    disc = {"disc": parts.disc_raw.state_dict(), "opt_d": parts.opt_d.state_dict(),
            "sched_d": parts.sched_d.state_dict()} if recipe.loss.adversarial else {}
    blob = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "recipe": recipe.to_dict(),
        "model": parts.codec.state_dict(),
        "opt_g": parts.opt_g.state_dict(),
        "sched_g": parts.sched_g.state_dict(),
        **disc,
        "step": state.step,
        "bad_steps": state.bad_steps,
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    atomic_torch_save(blob, path)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint dict with ``weights_only=True`` (:func:`~rotcodec.files.load_tensors`: a file
    holding Python objects is refused); :class:`FormatError` if it is not one."""
    path = Path(path)
    try:
        blob = load_tensors(path, "cpu", "rotcodec checkpoint")
    except FormatError:
        raise
    except (RuntimeError, EOFError, ValueError) as err:
        raise FormatError(f"{path} is not a loadable rotcodec checkpoint ({str(err).splitlines()[0]})") from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise FormatError(f"{path} is not a rotcodec training checkpoint")
    return blob


def load_checkpoint(path: str | os.PathLike, parts: Parts, recipe: Recipe) -> TrainState:
    """Restore ``parts`` and the RNG states from ``path``; the model config must match ``recipe``'s."""
    blob = read_checkpoint(path)
    saved = Recipe.from_dict(blob["recipe"])
    if saved.model != recipe.model:
        raise ValueError(f"{path} holds a different model config than the recipe; resume with the same model settings")
    parts.codec.load_state_dict(blob["model"])
    parts.opt_g.load_state_dict(blob["opt_g"])
    parts.sched_g.load_state_dict(blob["sched_g"])
    if "disc" in blob:  # absent when the run trained without discriminators
        parts.disc_raw.load_state_dict(blob["disc"])
        parts.opt_d.load_state_dict(blob["opt_d"])
        parts.sched_d.load_state_dict(blob["sched_d"])
    elif recipe.loss.adversarial:
        raise ValueError(f"{path} was written without discriminators (loss.adversarial = false); "
                         "resume it with the same recipe, or start the adversarial run with --init")
    torch.set_rng_state(blob["rng"])
    if torch.cuda.is_available() and blob["cuda_rng"]:
        torch.cuda.set_rng_state_all(blob["cuda_rng"])
    return TrainState(step=int(blob["step"]), bad_steps=int(blob["bad_steps"]))
