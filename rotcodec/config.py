"""Model configuration: frozen dataclasses, presets, and a strict dict round trip.

A checkpoint stores ``CodecConfig.to_dict()`` so that it can rebuild its own model; recipes
(TOML) fill the same dataclasses. Unknown keys are an error, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["QuantizerConfig", "CodecConfig", "PRESETS"]

ESTIMATORS = ("rotation", "ste", "rotation_noscale")
CODEBOOK_LEARNING = ("ema", "loss", "simvq")
RESIDUAL_ROUTES = ("detached", "chained")
ACTIVATIONS = ("snake", "elu")
ARCHS = ("seanet", "stft")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


@dataclass(frozen=True)
class QuantizerConfig:
    """Residual VQ settings.

    estimator: gradient estimator through the lookup, ``"rotation"`` or ``"ste"`` (and, for the
        ablation, ``"rotation_noscale"``: the rotation without the ||q||/||e|| rescaling).
    codebook: how codes learn, ``"ema"`` (k-means init, EMA updates), ``"loss"`` (a learned
        parameter trained by the ``vq/codebook`` loss) or ``"simvq"`` (SimVQ, Zhu et al. 2024: a
        frozen codebook ``C`` seen through one learned linear map ``W``, codewords ``C W^T``; the
        ``vq/codebook`` loss trains ``W``, so every code moves at each step). The estimator gives
        the codebook no gradient.
    dead_code_threshold: a code whose recent usage (an EMA of its counts with decay
        ``dead_code_decay``) falls below this fraction of the mean recent usage (1.0 = uniform)
        is replaced by a random encoder vector of the current batch; 0 disables. Relative, so the
        same value works for any batch size and codebook size; the fast decay catches a collapse
        (all vectors moving to a few codes) within tens of steps.
    residual_route: ``"detached"`` (each stage quantises ``sg(residual)`` but its gradient goes
        straight to the encoder latent, so the latent gets the sum over active stages) or
        ``"chained"`` (residuals keep the estimators' graph, as in EnCodec/DAC).
    dropout: probability, per batch item, of training with a random number of stages 1..n_q.
    beam: how encoding chooses codes: 1 is greedy residual coding (each stage takes its nearest
        code); ``B > 1`` keeps the ``B`` best code paths per frame by summed code-space error
        (:mod:`rotcodec.quantize.search`). Encoding only: training, the weights and every decoder
        are the same, so it is left out of config equality (a checkpoint resumes under any beam).
    """

    n_q: int = 12
    codebook_size: int = 1024
    code_dim: int = 8
    estimator: str = "rotation"
    codebook: str = "ema"
    normalize: bool = False
    ema_decay: float = 0.99
    kmeans_init: bool = True
    kmeans_iters: int = 10
    dead_code_threshold: float = 0.05
    dead_code_decay: float = 0.9
    residual_route: str = "detached"
    dropout: float = 0.5
    eps: float = 1e-6
    beam: int = field(default=1, compare=False)

    def __post_init__(self) -> None:
        _check(isinstance(self.beam, int) and self.beam >= 1, f"quantizer.beam must be an integer >= 1, got {self.beam!r}")
        _check(self.n_q >= 1, f"quantizer.n_q must be >= 1, got {self.n_q}")
        _check(self.codebook_size >= 2, f"quantizer.codebook_size must be >= 2, got {self.codebook_size}")
        _check(self.code_dim >= 1, f"quantizer.code_dim must be >= 1, got {self.code_dim}")
        _check(self.estimator in ESTIMATORS, f"quantizer.estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        _check(self.codebook in CODEBOOK_LEARNING, f"quantizer.codebook must be one of {CODEBOOK_LEARNING}, got {self.codebook!r}")
        _check(self.residual_route in RESIDUAL_ROUTES, f"quantizer.residual_route must be one of {RESIDUAL_ROUTES}, got {self.residual_route!r}")
        _check(0.0 <= self.dropout <= 1.0, f"quantizer.dropout must be in [0, 1], got {self.dropout}")
        _check(0.0 < self.ema_decay < 1.0, f"quantizer.ema_decay must be in (0, 1), got {self.ema_decay}")
        _check(self.dead_code_threshold >= 0, "quantizer.dead_code_threshold must be >= 0")
        _check(0.0 < self.dead_code_decay < 1.0, "quantizer.dead_code_decay must be in (0, 1)")

    @property
    def bits(self) -> float:
        """Bits per code, log2(codebook_size)."""
        return math.log2(self.codebook_size)


@dataclass(frozen=True)
class CodecConfig:
    """The whole codec: sample rate, the encoder/decoder family and its sizes, and the RVQ.

    ``arch`` picks the family (``rotcodec/model/<arch>.py``):

    * ``"seanet"``: SEANet/DAC-style waveform convolutions. The hop length (samples per frame) is
      the product of ``strides``; the encoder's channels double at each stride
      (``channels * 2**len(strides)`` before the latent projection) and the decoder's halve from
      ``decoder_channels``.
    * ``"stft"``: convolutions at the frame rate on the power-law-compressed complex STFT
      (window ``stft_window``, hop ``stft_hop``), ``stft_stack`` STFT frames per code frame, so the
      hop length is ``stft_hop * stft_stack``; ``width`` channels, ``blocks`` ConvNeXt blocks on
      each side with ``kernel_size`` depthwise kernels, magnitudes compressed as ``|X|^compress``.

    Fields of the other family are ignored. Model files written before ``arch`` existed load as
    ``"seanet"``.
    """

    name: str = "custom"
    sample_rate: int = 16000
    channels: int = 32
    decoder_channels: int = 256
    strides: tuple[int, ...] = (2, 4, 5, 8)
    latent_dim: int = 128
    dilations: tuple[int, ...] = (1, 3, 9)
    kernel_size: int = 7
    activation: str = "snake"
    arch: str = "seanet"
    stft_window: int = 320
    stft_hop: int = 80
    stft_stack: int = 4
    width: int = 256
    blocks: int = 6
    expansion: int = 3
    compress: float = 0.3
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)

    def __post_init__(self) -> None:
        # TOML and JSON give lists; keep tuples so the config stays hashable and frozen.
        object.__setattr__(self, "strides", tuple(self.strides))
        object.__setattr__(self, "dilations", tuple(self.dilations))
        if isinstance(self.quantizer, dict):
            object.__setattr__(self, "quantizer", QuantizerConfig(**self.quantizer))
        _check(self.sample_rate > 0, f"sample_rate must be > 0, got {self.sample_rate}")
        _check(len(self.strides) >= 1 and all(s >= 1 for s in self.strides), f"strides must be >= 1, got {self.strides}")
        _check(self.channels >= 1 and self.decoder_channels >= 2 ** len(self.strides),
               "channels must be >= 1 and decoder_channels >= 2**len(strides)")
        _check(self.activation in ACTIVATIONS, f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        _check(self.kernel_size % 2 == 1, f"kernel_size must be odd, got {self.kernel_size}")
        _check(self.arch in ARCHS, f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.arch == "stft":
            _check(self.stft_hop >= 1 and self.stft_stack >= 1, "stft_hop and stft_stack must be >= 1")
            _check(self.stft_window >= self.stft_hop and (self.stft_window - self.stft_hop) % 2 == 0,
                   f"stft_window must be >= stft_hop with an even difference, got {self.stft_window}, {self.stft_hop}")
            _check(self.width >= 1 and self.blocks >= 0 and self.expansion >= 1, "width, expansion >= 1 and blocks >= 0")
            _check(0.0 < self.compress <= 1.0, f"compress must be in (0, 1], got {self.compress}")

    @property
    def hop_length(self) -> int:
        """Samples per code frame."""
        if self.arch == "stft":
            return self.stft_hop * self.stft_stack
        return math.prod(self.strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (lists for tuples), the inverse of :meth:`from_dict`."""
        d = dataclasses.asdict(self)
        d["strides"] = list(self.strides)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CodecConfig":
        """Strict inverse of :meth:`to_dict`: unknown keys raise ``ValueError``."""
        d = dict(d)
        q = d.pop("quantizer", {})
        _reject_unknown(cls, d, "")
        _reject_unknown(QuantizerConfig, q, "quantizer.")
        return cls(**d, quantizer=QuantizerConfig(**q))

    def with_updates(self, **changes: Any) -> "CodecConfig":
        """A copy with fields changed; ``quantizer`` may be a dict of quantizer fields to change."""
        q = changes.pop("quantizer", None)
        if isinstance(q, dict):
            _reject_unknown(QuantizerConfig, q, "quantizer.")
            changes["quantizer"] = replace(self.quantizer, **q)
        elif q is not None:
            changes["quantizer"] = q
        _reject_unknown(type(self), changes, "")
        return replace(self, **changes)

    @classmethod
    def preset(cls, name: str) -> "CodecConfig":
        """One of :data:`PRESETS`: ``tiny`` (CPU tests), ``speech16k`` (6 kbps), ``stft16k`` (6 kbps,
        STFT domain), ``audio24k`` (24 kbps)."""
        try:
            return PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


def _reject_unknown(cls: type, d: dict[str, Any], prefix: str) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown config key(s): {', '.join(prefix + k for k in unknown)}")


PRESETS: dict[str, CodecConfig] = {
    # Under 1 M parameters: for tests and CPU smoke runs. 50 frames/s, 4 x 256 codes = 1.6 kbps.
    "tiny": CodecConfig(
        name="tiny", sample_rate=16000, channels=8, decoder_channels=64, strides=(2, 4, 5, 8),
        latent_dim=32, dilations=(1, 3), quantizer=QuantizerConfig(n_q=4, codebook_size=256, code_dim=8),
    ),
    # The STFT family at test size: 50 frames/s, 4 x 256 codes = 1.6 kbps.
    "tiny_stft": CodecConfig(
        name="tiny_stft", sample_rate=16000, arch="stft", width=32, blocks=2, expansion=2, latent_dim=32,
        quantizer=QuantizerConfig(n_q=4, codebook_size=256, code_dim=8),
    ),
    # 16 kHz speech: hop 320 = 50 frames/s, 12 x 1024 codes = 0.5 kbps a stage, 6 kbps in all.
    "speech16k": CodecConfig(
        name="speech16k", sample_rate=16000, channels=32, decoder_channels=384, strides=(2, 4, 5, 8),
        latent_dim=128, quantizer=QuantizerConfig(n_q=12, codebook_size=1024, code_dim=8),
    ),
    # 16 kHz speech in the STFT domain: 320-sample window, 80 hop, 4 STFT frames per code frame
    # (50 frames/s), 6 ConvNeXt blocks of width 256 per side; the same 12 x 1024 codes, 0.5-6 kbps.
    "stft16k": CodecConfig(
        name="stft16k", sample_rate=16000, arch="stft", stft_window=320, stft_hop=80, stft_stack=4,
        width=256, blocks=6, expansion=3, latent_dim=128,
        quantizer=QuantizerConfig(n_q=12, codebook_size=1024, code_dim=8),
    ),
    # 24 kHz general audio (music, effects, speech), the STFT family: a 320-sample window (13 ms) and
    # hop 80, 4 frames to a code frame = 75 frames/s (a transient smears over 13 ms, not 20), 16
    # stages x 1024 codes = 0.75 to 12 kbps in one model. The same trunk sizes and the same input
    # shape (161 bins x 4 frames) as stft16k, so it can start from the speech model's weights.
    "stft24k": CodecConfig(
        name="stft24k", sample_rate=24000, arch="stft", stft_window=320, stft_hop=80, stft_stack=4,
        width=256, blocks=6, expansion=3, latent_dim=128,
        quantizer=QuantizerConfig(n_q=16, codebook_size=1024, code_dim=8),
    ),
    # 24 kHz general audio: hop 320 = 75 frames/s, 0.75 kbps a stage, 32 stages = 24 kbps.
    "audio24k": CodecConfig(
        name="audio24k", sample_rate=24000, channels=32, decoder_channels=512, strides=(2, 4, 5, 8),
        latent_dim=128, quantizer=QuantizerConfig(n_q=32, codebook_size=1024, code_dim=8),
    ),
}
