"""Growing a trained STFT-family model by identity blocks: more capacity, the same function at step 0.

A ConvNeXt block computes ``x + gamma * f(x)`` (:class:`rotcodec.model.stft.ConvNeXtBlock`); with
its layer scale ``gamma`` at 0 it is the identity, whatever its other weights. So a model trained
with ``blocks = n`` becomes one with ``blocks = m > n`` by keeping every trained weight and
appending ``m - n`` fresh blocks to each trunk (encoder and decoder), after the trained ones and
before the trunk's final norm, with ``gamma = 0``: it encodes the same codes and decodes the same
audio (to float rounding), and the first step's gradient reaches each new block through ``gamma``
(DESIGN: capacity grown from the bundled model rather than trained from scratch).

Only ``blocks`` may grow; widening (``width``, ``expansion``) would need a function-preserving
widening of every layer and is not offered. ``rotcodec train --init MODEL`` with a recipe of more
blocks calls :func:`grow_state` and logs what grew.
"""

from __future__ import annotations

import re

import torch

from rotcodec.config import CodecConfig

__all__ = ["GROWABLE_FIELDS", "grow_state", "warm_start_state"]

GROWABLE_FIELDS = frozenset({"blocks"})
_BLOCK = re.compile(r"^(encoder|decoder)\.trunk\.blocks\.(\d+)\.")


def grow_state(state: dict[str, torch.Tensor], old: CodecConfig, new: CodecConfig,
               fresh: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict of a model of config ``new`` that computes what ``state`` (of ``old``) does.

    ``fresh`` is the state dict of a newly built ``Codec(new)``: the appended blocks take their
    initial weights from it, with every ``gamma`` set to 0. Raises ``ValueError`` unless ``new``
    differs from ``old`` only by more blocks of the STFT family.
    """
    if old.arch != "stft" or new.arch != "stft":
        raise ValueError("only STFT-family models grow by blocks")
    if new.blocks < old.blocks:
        raise ValueError(f"blocks {old.blocks} -> {new.blocks}: a model can grow, not shrink")
    out = dict(state)
    for key, value in fresh.items():
        m = _BLOCK.match(key)
        if m and int(m.group(2)) >= old.blocks:
            out[key] = torch.zeros_like(value) if key.endswith(".gamma") else value.clone()
    return out


def warm_start_state(state: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A new model's state dict (``fresh``, of a newly built ``Codec``) with every tensor of a trained
    model's ``state`` whose name and shape match copied in; returns it and the names left fresh.

    Not function-preserving (unlike :func:`grow_state`): a warm start for a model of another
    sample rate or more stages, whose trunks see inputs of the same shape (``stft24k`` from
    ``stft16k``: the same 161 bins x 4 frames, at other frequencies). Stages beyond the trained
    ones start fresh (their codebooks are k-means initialised on the first batch).
    """
    out, left = dict(fresh), []
    for key, value in fresh.items():
        if key in state and state[key].shape == value.shape:
            out[key] = state[key].clone()
        else:
            left.append(key)
    return out, left
