"""Importable training pieces: the parts of a run, one generator step, one discriminator step.

The loop in ``loop.py`` is a thin driver over these; tests call them directly.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
from torch import nn

from rotcodec.model.codec import Codec
from rotcodec.train.config import Recipe
from rotcodec.train.discriminators import Discriminators
from rotcodec.train.losses import (
    CompressedStftLoss,
    MultiScaleMelLoss,
    discriminator_adv_loss,
    feature_matching_loss,
    generator_adv_loss,
    negative_si_sdr,
    waveform_l1,
)

__all__ = ["Parts", "build_parts", "generator_step", "discriminator_step", "adversarial_on", "autocast_for",
           "cooldown_factor"]


@dataclass
class Parts:
    """Everything with state in a run. ``model``/``disc`` may be DDP wrappers of ``codec``/``disc_raw``."""

    codec: Codec
    disc_raw: Discriminators
    model: nn.Module
    disc: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler
    mel: MultiScaleMelLoss
    stft: CompressedStftLoss


def lr_factor(recipe: Recipe):
    """Linear warm-up, then exponential decay per step."""
    o = recipe.optim

    def factor(step: int) -> float:
        if step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        return o.lr_decay ** (step - o.warmup_steps)

    return factor


def cooldown_factor(seconds_left: float, cooldown_seconds: float) -> float:
    """Learning-rate multiplier of a time-budgeted run: 1 until the last ``cooldown_seconds``, then
    falling linearly to 0 at the deadline (the decay phase of a warmup-stable-decay schedule)."""
    if cooldown_seconds <= 0:
        return 1.0
    return min(1.0, max(0.0, seconds_left / cooldown_seconds))


def _step_scaled(optimizer: torch.optim.Optimizer, scheduler, lr_scale: float) -> float:
    """``optimizer.step()`` at ``lr_scale`` times the scheduled rate, then advance the schedule
    (which sets every rate afresh from its base, so the scale lasts one step). Returns the rate used."""
    for group in optimizer.param_groups:
        group["lr"] *= lr_scale
    used = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    return used


def build_parts(recipe: Recipe, device: torch.device, codec: Codec | None = None) -> Parts:
    """Build the codec (or take ``codec``), discriminators, optimizers and schedulers on ``device``."""
    codec = (codec or Codec(recipe.model)).to(device)
    disc = Discriminators(recipe.model.sample_rate, recipe.loss.disc_width).to(device)
    o = recipe.optim
    opt_g = torch.optim.AdamW(codec.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay, fused=o.fused)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=o.d_lr, betas=o.betas, weight_decay=o.weight_decay, fused=o.fused)
    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, lr_factor(recipe))
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, lr_factor(recipe))
    mel = MultiScaleMelLoss(recipe.model.sample_rate).to(device)
    stft = CompressedStftLoss(recipe.model.sample_rate).to(device)
    return Parts(codec, disc, codec, disc, opt_g, opt_d, sched_g, sched_d, mel, stft)


def adversarial_on(recipe: Recipe, step: int) -> bool:
    return recipe.loss.adversarial and step >= recipe.loss.adversarial_start


def autocast_for(recipe: Recipe, device: torch.device):
    """bf16 autocast on CUDA (``precision`` "auto" or "bf16"); fp32 otherwise. The quantizer's
    rotation and the mel loss switch autocast off internally."""
    p = recipe.train.precision
    if p not in ("auto", "fp32", "bf16"):
        raise ValueError(f"train.precision must be auto, fp32 or bf16, got {p!r}")
    if p == "bf16" or (p == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _all_finite(value: torch.Tensor) -> bool:
    """True when ``value`` is finite on every DDP rank (so all ranks skip a bad step together)."""
    flag = torch.tensor([0.0 if torch.isfinite(value).all() else 1.0], device=value.device)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(flag)
    return flag.item() == 0.0


def discriminator_step(parts: Parts, recipe: Recipe, real: torch.Tensor, fake: torch.Tensor, amp,
                       lr_scale: float = 1.0) -> dict[str, float] | None:
    """One discriminator update on ``real`` and ``fake.detach()`` ``[B, 1, T]``; None if non-finite.
    ``lr_scale`` multiplies the scheduled learning rate for this step (the cool-down)."""
    with amp:
        logits, _ = parts.disc(torch.cat([real, fake.detach()]))
        b = real.shape[0]
        loss = discriminator_adv_loss([lg[:b] for lg in logits], [lg[b:] for lg in logits])
    parts.opt_d.zero_grad(set_to_none=True)
    if not _all_finite(loss):
        return None
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(parts.disc_raw.parameters(), recipe.optim.grad_clip, foreach=True)
    _step_scaled(parts.opt_d, parts.sched_d, lr_scale)
    return {"disc": loss.item(), "grad_norm_d": float(norm)}


def generator_step(parts: Parts, recipe: Recipe, real: torch.Tensor, step: int, amp,
                   lr_scale: float = 1.0, metrics: bool = True) -> tuple[dict[str, float] | None, torch.Tensor]:
    """One codec update on ``real [B, 1, T]``, at ``lr_scale`` times the scheduled learning rate.

    Returns ``(logs, decoded)``: named losses (``mel``, ``stft``, ``wave``, ``sisdr``, ``adv``, ``feat``, ``vq/commit``,
    ``vq/codebook``), their weighted ``total``, and the quantizer metrics (per stage only with
    ``metrics``: a step that is not logged skips them), or ``None`` when the loss was not finite
    (the step is skipped, nothing is updated).
    """
    adversarial = adversarial_on(recipe, step)
    with amp:
        out = parts.model(real, metrics=metrics)
        fake = out.wav
        losses = {"mel": parts.mel(fake, real), "stft": parts.stft(fake, real), "wave": waveform_l1(fake.float(), real.float()),
                  "sisdr": negative_si_sdr(fake, real)}
        if adversarial:
            with torch.no_grad():
                _, real_feats = parts.disc_raw(real)
            fake_logits, fake_feats = parts.disc(fake)
            losses["adv"] = generator_adv_loss(fake_logits)
            losses["feat"] = feature_matching_loss(real_feats, fake_feats)
        losses.update(out.losses)
        total = sum(recipe.loss.weight(k) * v.float() for k, v in losses.items() if recipe.loss.weight(k) > 0)
    parts.opt_g.zero_grad(set_to_none=True)
    if not _all_finite(total):
        return None, fake
    total.backward()
    norm = torch.nn.utils.clip_grad_norm_(parts.codec.parameters(), recipe.optim.grad_clip, foreach=True)
    lr = _step_scaled(parts.opt_g, parts.sched_g, lr_scale)
    logs = {k: float(v.detach()) for k, v in losses.items()}
    logs.update({k: float(v) for k, v in out.metrics.items()})
    logs.update(total=float(total.detach()), grad_norm=float(norm), lr=lr)
    if not math.isfinite(logs["grad_norm"]):
        logs["grad_norm"] = -1.0
    return logs, fake
