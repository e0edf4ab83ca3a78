"""Quantizer surgery: carry a trained residual VQ into other quantizer settings, same function.

A fine-tune that starts from a trained model (``rotcodec train --init``) may change how its
quantizer *learns* without changing what it *computes*:

- the training-only settings (:data:`TRAINING_FIELDS`: estimator, dropout, dead-code care, EMA
  decay, residual route) touch no weight, nor does the encoder's default search
  (:data:`ENCODING_FIELDS`: ``beam``, which encoding calls may also override per call);
- ``codebook`` (``"ema"`` | ``"loss"`` | ``"simvq"``) changes which tensors hold the codewords, so
  :func:`carry_state` rewrites the state dict: the codewords the old quantizer looks up become the
  new one's (``embed``; a SimVQ map starts as the identity over them; an EMA codebook's running sum
  is rebuilt from them and the usage counts). Encoding and decoding are unchanged at step 0.

Anything else (``n_q``, ``codebook_size``, ``code_dim``, ``normalize``) changes the code space
itself, so no carried state would mean the same thing; :func:`unbridgeable` names those fields.
"""

from __future__ import annotations

import re
from dataclasses import asdict

import torch

from rotcodec.config import QuantizerConfig

__all__ = ["TRAINING_FIELDS", "ENCODING_FIELDS", "BRIDGEABLE_FIELDS", "unbridgeable", "carry_state"]

TRAINING_FIELDS = frozenset({"estimator", "dropout", "dead_code_threshold", "dead_code_decay", "ema_decay",
                             "kmeans_init", "kmeans_iters", "residual_route", "eps"})
ENCODING_FIELDS = frozenset({"beam"})  # the model's default search; training never reads it
BRIDGEABLE_FIELDS = TRAINING_FIELDS | ENCODING_FIELDS | {"codebook"}

_EMBED = re.compile(r"^(.*layers\.\d+\.)embed$")


def unbridgeable(fields: list[str]) -> list[str]:
    """The names in ``fields`` (``quantizer.x`` or top-level model fields, as
    :func:`rotcodec.train.loop.config_diff` gives them) that surgery cannot carry across."""
    return [f for f in fields if not (f.startswith("quantizer.") and f.split(".", 1)[1] in BRIDGEABLE_FIELDS)]


def _codewords(state: dict[str, torch.Tensor], prefix: str, codebook: str) -> torch.Tensor:
    """The codewords ``[K, d]`` one stage looks up (before the lookup's own normalisation, if any)."""
    embed = state[prefix + "embed"]
    if codebook == "simvq":
        return embed @ state[prefix + "embed_map.weight"].t()  # nn.Linear: x W^T
    return embed


def carry_state(state: dict[str, torch.Tensor], old: QuantizerConfig, new: QuantizerConfig) -> dict[str, torch.Tensor]:
    """A state dict for a model whose quantizer is ``new``, from ``state`` trained under ``old``.

    Keys outside the quantizer stages' codebooks pass through untouched (the same tensors).
    Raises ValueError when the two configs differ in a field that changes the code space."""
    a, b = asdict(old), asdict(new)
    differ = [f"quantizer.{k}" for k in a if a[k] != b[k]]
    bad = unbridgeable(differ)
    if bad:
        raise ValueError(f"quantizer surgery cannot change {', '.join(bad)} (the code space itself); "
                         "train such a model from scratch")
    if old.codebook == new.codebook:
        return dict(state)
    prefixes = [m.group(1) for key in state if (m := _EMBED.match(key))]
    stage_keys = {p + s for p in prefixes for s in ("embed", "embed_avg", "embed_map.weight")}
    out = {k: v for k, v in state.items() if k not in stage_keys}
    for p in prefixes:
        words = _codewords(state, p, old.codebook).detach().clone()
        out[p + "embed"] = words
        if new.codebook == "ema":
            out[p + "embed_avg"] = words * state[p + "cluster_size"][:, None]
        elif new.codebook == "simvq":
            out[p + "embed_map.weight"] = torch.eye(words.shape[1], dtype=words.dtype, device=words.device)
    return out
