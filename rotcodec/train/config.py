"""Training recipes: frozen dataclasses filled from TOML, with ``--set section.key=value`` overrides.

A recipe has six sections: ``model`` (a preset name plus any :class:`CodecConfig` field, and a
``model.quantizer`` table), ``data``, ``augment``, ``optim``, ``loss`` and ``train``. Unknown keys
are errors.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rotcodec.config import CodecConfig

__all__ = ["DataConfig", "AugmentConfig", "OptimConfig", "LossConfig", "LoopConfig", "Recipe", "load_recipe", "parse_set"]


@dataclass(frozen=True)
class DataConfig:
    """Segments drawn from audio folders. ``valid_percent`` of files (chosen by a hash of their
    path, so the split never changes between runs) are held out for validation."""

    segment_seconds: float = 1.0
    batch_size: int = 16
    num_workers: int = 2
    valid_percent: float = 5.0
    valid_clips: int = 32
    valid_seconds: float = 3.0
    # Segments are conditioned exactly as the encoder conditions its input (DC out, each 1 s gain
    # block to one level: rotcodec.coding.conditioning). condition = false: the older scheme, each
    # segment scaled to an RMS drawn from loudness_db (validation clips to valid_loudness_db).
    condition: bool = True
    loudness_db: tuple[float, float] = (-28.0, -16.0)
    valid_loudness_db: float = -22.0
    # Sampling share of each --data folder, keyed by a part of its path (e.g. {speech16k = 0.3});
    # within a folder, files by duration. Empty: every file by its duration.
    weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AugmentConfig:
    """On-the-fly augmentation (rotcodec.train.augment): per kind a probability (0: off) and ranges."""

    speed: float = 0.0
    speed_range: tuple[float, float] = (0.9, 1.1)
    eq: float = 0.0
    eq_db: tuple[float, float] = (-8.0, 8.0)
    reverb: float = 0.0
    reverb_rt60: tuple[float, float] = (0.15, 0.8)
    reverb_wet: tuple[float, float] = (0.1, 0.6)
    band: float = 0.0
    phone_share: float = 0.5  # of band-limited segments, the share that gets the phone band (300-3400 Hz)
    lowpass_hz: tuple[float, float] = (4000.0, 5500.0)  # the low-pass cut-offs to draw from
    noise: float = 0.0
    noise_snr_db: tuple[float, float] = (5.0, 30.0)

    @property
    def active(self) -> bool:
        return any(p > 0 for p in (self.speed, self.eq, self.reverb, self.band, self.noise))


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 3e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.0
    warmup_steps: int = 100
    lr_decay: float = 0.999996  # per-step exponential decay after warm-up (DAC uses 0.999996)
    grad_clip: float = 1e3
    d_lr: float = 3e-4
    # AdamW's fused kernel (one pass over all parameters on CPU and CUDA): the same update as the
    # per-tensor loop to float rounding; 11.8 -> 4.8 ms a step on 2 CPU cores (docs/step_profile.json).
    fused: bool = True


@dataclass(frozen=True)
class LossConfig:
    """Weights of the named losses; 0 means "log only". ``adversarial`` switches the
    discriminators on at step ``adversarial_start`` (off entirely when false)."""

    mel: float = 15.0
    stft: float = 0.0  # compressed complex STFT (phase-aware, see losses.CompressedStftLoss)
    wave: float = 0.0
    sisdr: float = 0.0
    adv: float = 1.0
    feat: float = 2.0
    commit: float = 0.25
    codebook: float = 1.0
    adversarial: bool = True
    adversarial_start: int = 0
    disc_width: int = 32

    def weight(self, name: str) -> float:
        """Weight of a named loss (``vq/commit`` -> ``commit``)."""
        return getattr(self, name.split("/")[-1])


@dataclass(frozen=True)
class LoopConfig:
    steps: int = 100_000  # 0: no step limit, train until max_minutes (or until stopped)
    valid_every: int = 1000
    checkpoint_every: int = 1000
    log_every: int = 50
    seed: int = 0
    precision: str = "auto"  # "auto" (bf16 on CUDA, fp32 on CPU), "fp32" or "bf16"
    compile: bool = False
    max_bad_steps: int = 20  # consecutive non-finite losses before stopping
    examples: int = 2  # audio examples written at each validation
    max_minutes: float = 0.0  # stop (validate, checkpoint, save) after this long in this process; 0: no limit
    clock: str = "wall"  # what max_minutes counts: "wall" time or this process's "cpu" time (fair on shared cores)
    # With max_minutes: over the last cooldown_minutes the learning rate falls linearly to 0
    # (warmup-stable-decay); checkpoint_stable.pt keeps the run as it was when the cool-down began.
    cooldown_minutes: float = 0.0


@dataclass(frozen=True)
class Recipe:
    model: CodecConfig = field(default_factory=lambda: CodecConfig.preset("tiny"))
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: LoopConfig = field(default_factory=LoopConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), **{s: _plain(getattr(self, s)) for s in _SECTIONS}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Recipe":
        """Build from nested tables. ``model.preset`` picks the base model; other keys override it."""
        d = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
        unknown = sorted(set(d) - {"model", *_SECTIONS})
        if unknown:
            raise ValueError(f"unknown recipe section(s): {', '.join(unknown)}")
        model = dict(d.get("model", {}))
        base = CodecConfig.preset(model.pop("preset", "tiny"))
        model_cfg = CodecConfig.from_dict(_merge(base.to_dict(), model))
        kw: dict[str, Any] = {"model": model_cfg}
        for name, klass in _SECTIONS.items():
            kw[name] = _build(klass, d.get(name, {}), name)
        return cls(**kw)

    def with_kbps(self, kbps: float) -> "Recipe":
        """Set the number of stages so the top bitrate is the largest not above ``kbps``."""
        m = self.model
        per_stage = m.frame_rate * m.quantizer.bits / 1000
        n_q = math.floor(kbps / per_stage + 1e-9)
        if n_q < 1:
            raise ValueError(f"{kbps} kbps is below one stage ({per_stage:g} kbps at {m.frame_rate:g} frames/s "
                             f"x {m.quantizer.bits:g} bits) for this model")
        return replace(self, model=m.with_updates(quantizer={"n_q": n_q}))


_SECTIONS = {"data": DataConfig, "augment": AugmentConfig, "optim": OptimConfig, "loss": LossConfig,
             "train": LoopConfig}


def _plain(obj) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(obj).items()}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _build(klass: type, values: dict[str, Any], section: str):
    known = {f.name: f for f in fields(klass)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown key(s) in [{section}]: {', '.join(unknown)}")
    conv = {}
    for k, v in values.items():
        v = tuple(v) if isinstance(v, list) else v
        f = known[k]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        conv[k] = _check_type(v, default, f"{section}.{k}")
    return klass(**conv)


def _check_type(value: Any, default: Any, name: str) -> Any:
    """Values must have their default's type (an int is accepted for a float)."""
    if isinstance(default, dict):
        ok = isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, (int, float))
                                             and not isinstance(v, bool) for k, v in value.items())
        value = {k: float(v) for k, v in value.items()} if ok else value
    elif isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(default, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float))
        value = float(value) if ok else value
    elif isinstance(default, tuple):
        ok = isinstance(value, tuple) and len(value) == len(default)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ValueError(f"{name} must be like {default!r}, got {value!r}")
    return value


def parse_set(recipe: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Apply one ``section.key=value`` (value parsed as TOML, else taken as a string) to a dict recipe."""
    if "=" not in assignment:
        raise ValueError(f"--set expects section.key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) < 2 or not all(parts):
        raise ValueError(f"--set key must be section.key, got {key!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    node = recipe
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {key}: {p} is not a section")
    node[parts[-1]] = value
    return recipe


def load_recipe(path: str | Path, sets: list[str] = ()) -> Recipe:
    """Read a TOML recipe, apply ``--set`` assignments, and validate everything."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such recipe: {path}")
    with open(path, "rb") as f:
        try:
            raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: invalid TOML ({err})") from None
    for s in sets:
        parse_set(raw, s)
    return Recipe.from_dict(raw)
