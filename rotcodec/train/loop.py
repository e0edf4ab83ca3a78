"""The training loop: a thin driver over ``steps.py``, with validation, logging and checkpoints.

Files in the run folder (rank 0 only):
    checkpoint.pt   everything for ``--resume`` (atomic: temp file + rename)
    model.pt        the inference model (``rotcodec.load_model`` / ``--model``)
    checkpoint_stable.pt, model_stable.pt
                    the same, written when ``train.cooldown_minutes`` begins (the run before its
                    learning rate fell: what a later run should continue)
    log.jsonl       one JSON object per log or validation row
    samples/step_N/ decoded validation examples (wav)
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from rotcodec.coding.conditioning import GAIN_FRAMES
from rotcodec.files import atomic_write_text
from rotcodec.model.codec import Codec
from rotcodec.model.growth import GROWABLE_FIELDS, grow_state
from rotcodec.quantize.surgery import carry_state, unbridgeable
from rotcodec.train.checkpoint import TrainState, load_checkpoint, save_checkpoint
from rotcodec.train.config import Recipe
from rotcodec.train.data import SegmentDataset, StepSampler, ValidSet, file_weights, scan_audio, split_files
from rotcodec.train.progress import ProgressPrinter, progress_line, remaining_seconds
from rotcodec.train.steps import Parts, autocast_for, build_parts, cooldown_factor, discriminator_step, generator_step
from rotcodec.train.validate import validate, write_examples

__all__ = ["train", "TrainResult", "setup_distributed"]

log = logging.getLogger("rotcodec.train")


def setup_distributed() -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)``; joins the process group when launched by ``torchrun``
    (NCCL on CUDA, gloo on CPU) or uses one already initialised by the caller."""
    cuda = torch.cuda.is_available()
    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


class TrainResult(NamedTuple):
    """What :func:`train` returns: the final counters and the trained codec (unwrapped from DDP)."""

    state: TrainState
    model: Codec


class JsonlLog:
    def __init__(self, path: Path | None):
        self.path = path

    def write(self, row: dict) -> None:
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")


def trim_log(path: Path, step: int) -> int:
    """Drop the rows of the log at ``path`` past ``step``, and any torn line: a run stopped between
    checkpoints logged steps that its resume from the checkpoint at ``step`` trains and logs again.
    Rewrites the file atomically when anything goes; returns the number of rows dropped."""
    if not path.exists():
        return 0
    keep, dropped = [], 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int) or row["step"] > step:
            dropped += 1
        else:
            keep.append(line + "\n")
    if dropped:
        atomic_write_text(path, "".join(keep))
    return dropped


def config_diff(a, b) -> list[str]:
    """Names of the fields (``quantizer.n_q`` for nested ones) where two model configs differ, the
    model's ``name`` aside (a run may name the model it continues)."""
    da, db = a.to_dict(), b.to_dict()
    out = []
    for key in sorted(set(da) | set(db)):
        if key == "name":
            continue
        va, vb = da.get(key), db.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += [f"{key}.{k}" for k in sorted(set(va) | set(vb)) if va.get(k) != vb.get(k)]
        elif va != vb:
            out.append(key)
    return out


def _check_run_folder(out: Path, resume: bool) -> Path:
    ckpt = out / "checkpoint.pt"
    if not resume and ckpt.exists():
        raise FileExistsError(f"{ckpt} exists; pass --resume to continue it or choose another --out")
    if resume and not ckpt.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {ckpt}")
    return ckpt


def _init_codec(init: "str | Codec", recipe: Recipe) -> Codec:
    """The model to start from, checked against the recipe's model (every field but the name) and
    renamed to it. Two kinds of difference are carried over with the same function at step 0:
    quantizer settings that change how it learns, not what it computes (estimator, dropout,
    codebook learning, ...: :mod:`rotcodec.quantize.surgery`), and more ConvNeXt blocks
    (identity blocks appended: :mod:`rotcodec.model.growth`). ValueError naming any other field
    that differs."""
    from rotcodec.model.loading import load_model_file

    codec = init if isinstance(init, Codec) else load_model_file(init)
    differ = config_diff(codec.config, recipe.model)
    grown = [f for f in differ if f in GROWABLE_FIELDS]
    surgery = [f for f in differ if f not in grown]
    bad = unbridgeable(surgery)
    if bad:
        label = codec.config.name if isinstance(init, Codec) else init
        raise ValueError(f"--init {label}: its model differs from the recipe's in {', '.join(bad)}; "
                         f"use the recipe it was trained with (or --set those fields to its values)")
    if differ:
        state = codec.state_dict()
        if surgery:
            log.info("--init: quantizer surgery for %s", ", ".join(
                f"{f} {getattr(codec.config.quantizer, f.split('.', 1)[1])!r} -> "
                f"{getattr(recipe.model.quantizer, f.split('.', 1)[1])!r}" for f in surgery))
            state = carry_state(state, codec.config.quantizer, recipe.model.quantizer)
        new = Codec(recipe.model).to(next(codec.parameters()).device)
        if grown:
            log.info("--init: grown by identity blocks: %s", ", ".join(
                f"{f} {getattr(codec.config, f)} -> {getattr(recipe.model, f)}" for f in grown))
            state = grow_state(state, codec.config, recipe.model, new.state_dict())
        new.load_state_dict(state)
        codec = new
    codec.config = recipe.model  # the same model under the run's name
    return codec.train()


def _datasets(recipe: Recipe, data: list[str], valid: list[str] | None) -> tuple[SegmentDataset, ValidSet]:
    """The training segments and the fixed validation clips, both conditioned as the encoder
    conditions its input (unless ``data.condition`` is false)."""
    files = scan_audio(data)
    train_files, valid_files = split_files(files, recipe.data.valid_percent)
    if valid:
        valid_files = scan_audio(valid)
    sr, d = recipe.model.sample_rate, recipe.data
    block = GAIN_FRAMES * recipe.model.hop_length if d.condition else 0
    valid_set = ValidSet(valid_files, sr, d.valid_seconds, d.valid_clips, d.valid_loudness_db, block)
    dataset = SegmentDataset(train_files, sr, d.segment_seconds, d.loudness_db, recipe.train.seed,
                             file_weights(train_files, d.weights), recipe.augment, block)
    return dataset, valid_set


def _batches(dataset: SegmentDataset, recipe: Recipe, step: int, rank: int, world: int, device: torch.device):
    """An endless iterator of ``[B, 1, T]`` batches from ``step`` on (see :class:`StepSampler`)."""
    sampler = StepSampler(recipe.data.batch_size, step, rank, world)
    rng_state = torch.get_rng_state()  # the loader must not consume the global RNG (exact resume)
    loader = DataLoader(dataset, batch_size=recipe.data.batch_size, sampler=sampler,
                        num_workers=recipe.data.num_workers, generator=torch.Generator().manual_seed(0),
                        persistent_workers=recipe.data.num_workers > 0, pin_memory=device.type == "cuda")
    batches = iter(loader)
    torch.set_rng_state(rng_state)
    return batches


def _validate(parts: Parts, valid_set: ValidSet, out: Path, step: int, recipe: Recipe, jlog: JsonlLog,
              printer: ProgressPrinter | None) -> None:
    parts.codec.eval()
    metrics = validate(parts.codec, valid_set)
    write_examples(parts.codec, valid_set, out / "samples" / f"step_{step}", recipe.train.examples)
    parts.codec.train()
    jlog.write({"step": step, "split": "valid", **metrics})
    if printer is not None:
        printer.message(f"step {step}: valid mel {metrics['mel']:.3f} "
                        f"pesq {metrics.get('pesq', float('nan')):.2f} si-sdr {metrics['si_sdr']:.2f}")


def train(recipe: Recipe, data: list[str], out: str | os.PathLike, resume: bool = False,
          valid: list[str] | None = None, init: "str | Codec | None" = None, progress: bool = True) -> "TrainResult":
    """Train ``recipe`` on the audio under ``data`` into the run folder ``out``.

    ``valid`` gives explicit validation folders (otherwise ``data.valid_percent`` of the files are
    held out). ``resume`` continues from ``out/checkpoint.pt`` exactly; ``init`` starts from the
    weights of a model (a saved model file or a :class:`Codec`, e.g. the bundled model) with fresh
    optimizers; its config must equal the recipe's model but for the name (the run's).
    """
    if recipe.train.steps < 0:
        raise ValueError(f"train.steps must be >= 0 (0: until train.max_minutes), got {recipe.train.steps}")
    rank, world, device = setup_distributed()
    out = Path(out)
    ckpt = _check_run_folder(out, resume)
    codec = _init_codec(init, recipe) if init is not None else None  # before anything is written
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    dataset, valid_set = _datasets(recipe, data, valid)

    torch.manual_seed(recipe.train.seed)
    parts = build_parts(recipe, device, codec)
    state = TrainState()
    if resume:
        state = load_checkpoint(ckpt, parts, recipe)
        if rank == 0 and (dropped := trim_log(out / "log.jsonl", state.step)):
            log.info("resuming at step %d: %d log rows past it (or torn) dropped", state.step, dropped)
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        parts.model = DDP(parts.codec, device_ids=ids)
        parts.disc = DDP(parts.disc_raw, device_ids=ids)
    if recipe.train.compile:
        parts.model = torch.compile(parts.model)
    batches = _batches(dataset, recipe, state.step, rank, world, device)

    jlog = JsonlLog(out / "log.jsonl" if rank == 0 else None)
    if rank == 0:
        log.info("training %s: %d train files, %d validation clips, on %s, batch %d, world %d",
                 recipe.model.name, len(dataset.files), len(valid_set), device, recipe.data.batch_size, world)
    amp = autocast_for(recipe, device)
    seconds_left = _time_left(recipe, device)
    left, cooling = seconds_left(), False
    t0, steps_timed = time.time(), 0
    printer = ProgressPrinter() if progress and rank == 0 else None  # time-based, unlike the log
    parts.model.train()
    steps = recipe.train.steps  # 0: until train.max_minutes (or Ctrl-C: the last checkpoint is intact)
    while not steps or state.step < steps:
        lr_scale = cooldown_factor(left, recipe.train.cooldown_minutes * 60)
        if lr_scale < 1 and not cooling:
            cooling = True
            _save_stable(out, parts, state, recipe, rank, world)
            jlog.write({"step": state.step, "split": "cooldown", "minutes": recipe.train.cooldown_minutes})
        real = next(batches).to(device, non_blocking=True)
        logged = (state.step + 1) % recipe.train.log_every == 0 or state.step == 0  # as the log below
        logs, fake = generator_step(parts, recipe, real, state.step, amp, lr_scale, metrics=logged)
        if logs is not None and recipe.loss.adversarial and state.step >= recipe.loss.adversarial_start:
            d_logs = discriminator_step(parts, recipe, real, fake, amp, lr_scale)
            logs = None if d_logs is None else {**logs, **d_logs}
        state.step += 1
        steps_timed += 1
        if logs is None:
            state.bad_steps += 1
            jlog.write({"step": state.step, "split": "skip", "reason": "non-finite loss", "bad_steps": state.bad_steps})
            log.warning("step %d: non-finite loss, step skipped (%d in a row)", state.step, state.bad_steps)
            if state.bad_steps >= recipe.train.max_bad_steps:
                raise RuntimeError(f"stopping: {state.bad_steps} non-finite losses in a row; the last checkpoint is intact")
            continue
        state.bad_steps = 0
        if rank == 0 and (state.step % recipe.train.log_every == 0 or state.step == 1):
            rate = steps_timed / max(time.time() - t0, 1e-9)
            extra = {"gpu_mem_gb": torch.cuda.max_memory_allocated(device) / 2**30} if device.type == "cuda" else {}
            jlog.write({"step": state.step, "split": "train", "steps_per_s": rate, **extra, **logs})
        left = seconds_left()
        last = state.step == steps or left <= 0
        if printer is not None and (printer.due() or last or state.step == 1):
            elapsed = time.time() - t0
            rate = steps_timed / max(elapsed, 1e-9)
            printer.show(progress_line(state.step, steps, elapsed, remaining_seconds(state.step, steps, rate, left),
                                       rate, logs.get("total", math.nan), logs.get("mel")), force=True)
        if rank == 0 and (state.step % recipe.train.valid_every == 0 or last) and len(valid_set):
            _validate(parts, valid_set, out, state.step, recipe, jlog, printer)
        if rank == 0 and (state.step % recipe.train.checkpoint_every == 0 or last):
            save_checkpoint(ckpt, parts, state, recipe)
            parts.codec.save(out / "model.pt")
        if world > 1 and (state.step % recipe.train.checkpoint_every == 0 or last):
            dist.barrier()
        if last:
            break
    if printer is not None:
        printer.close()
    return TrainResult(state, parts.codec)


def _save_stable(out: Path, parts: Parts, state: TrainState, recipe: Recipe, rank: int, world: int) -> None:
    """Keep the run as it is when the cool-down begins (``checkpoint_stable.pt``, ``model_stable.pt``)."""
    if rank == 0:
        save_checkpoint(out / "checkpoint_stable.pt", parts, state, recipe)
        parts.codec.save(out / "model_stable.pt")
        log.info("step %d: cool-down begins (%g minutes); checkpoint_stable.pt written",
                 state.step, recipe.train.cooldown_minutes)
    if world > 1:
        dist.barrier()


def _time_left(recipe: Recipe, device: torch.device):
    """A function giving the seconds left of ``train.max_minutes`` of ``train.clock`` since now
    (infinite without a limit).

    On several ranks every decision taken from it must be the same everywhere, so rank 0's answer
    is broadcast (on ``device``: NCCL broadcasts only CUDA tensors).
    """
    limit, clock = recipe.train.max_minutes * 60, recipe.train.clock
    if clock not in ("wall", "cpu"):
        raise ValueError(f"train.clock must be wall or cpu, got {clock!r}")
    cooldown = recipe.train.cooldown_minutes
    if cooldown < 0 or (cooldown > 0 and not 0 < cooldown <= recipe.train.max_minutes):
        raise ValueError(f"train.cooldown_minutes must lie in (0, train.max_minutes] (or be 0), got {cooldown:g} "
                         f"with max_minutes {recipe.train.max_minutes:g}")
    now = time.process_time if clock == "cpu" else time.monotonic
    start = now()

    def seconds_left() -> float:
        if limit <= 0:
            return math.inf
        left = limit - (now() - start)
        if dist.is_initialized():
            value = torch.tensor([left], dtype=torch.float64, device=device)
            dist.broadcast(value, 0)
            left = float(value.item())
        return left

    return seconds_left
