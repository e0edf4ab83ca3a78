"""Fit the context model in float32 torch and quantise it to the integer model.

The float network (:class:`ContextNet`) has the integer model's structure
(:mod:`rotcodec.entropy.model`): summed embeddings of the context codes, a ReLU, a per-stage
hidden layer, a ReLU, a per-stage output layer over the ``K`` codes. It is trained with
cross-entropy on token files (``rotcodec tokenize --format npy``), each example a frame with a
random stage count ``n_q`` (the model serves every bitrate: previous frames contribute their
stages ``< n_q``), then quantised (:func:`quantise`): int8 weights with per-row scales,
activations clipped at a calibrated maximum and requantised by integer multipliers and shifts,
logits in ``1/Q`` nat steps, and ``exp`` as a lookup table.

Command (settings from a recipe, ``recipes/entropy/stft16k_cpu.toml``)::

    python -m rotcodec.entropy.fit recipes/entropy/stft16k_cpu.toml --out rotcodec/pretrained/stft16k-cpu.entropy.npz
"""

from __future__ import annotations

import argparse
import json
import math
import time
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rotcodec.entropy.model import FILE_FORMAT, IntContextModel

__all__ = ["FitConfig", "ContextNet", "load_tokens", "fit", "quantise", "stage_bits", "main"]


@dataclass(frozen=True)
class FitConfig:
    """Sizes and training settings (a recipe's ``[entropy]`` table fills it)."""

    codebook_size: int = 1024
    stages: int = 12
    prev_frames: int = 3
    width: int = 64
    lower_stages: bool = True  # False: previous frames only (the ablation)
    minutes: float = 20.0
    steps: int = 0  # stop after this many steps too (0: wall time only)
    batch_size: int = 512
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    nq_choices: tuple[int, ...] = (3, 6, 12)  # stage counts drawn half the time (the bitrates served)
    valid_every: int = 500
    act_max: int = 4095  # integer activations 0..act_max
    logit_steps: int = 32  # Q: logit steps per nat


class ContextNet(nn.Module):
    """Float twin of :class:`~rotcodec.entropy.model.IntContextModel` (same slots and layers)."""

    def __init__(self, cfg: FitConfig):
        super().__init__()
        self.cfg = cfg
        K, S, P, D = cfg.codebook_size, cfg.stages, cfg.prev_frames, cfg.width
        self.tables = P * S + S - 1
        self.emb = nn.Embedding(self.tables * (K + 1), D)
        nn.init.normal_(self.emb.weight, std=0.3 / math.sqrt(P * S))
        self.stage_bias = nn.Parameter(torch.zeros(S, D))
        self.nq_bias = nn.Parameter(torch.zeros(S + 1, D))
        self.w1 = nn.Parameter(torch.randn(S, D, D) / math.sqrt(D))
        self.b1 = nn.Parameter(torch.zeros(S, D))
        self.wo = nn.Parameter(torch.randn(S, K, D) * 0.1 / math.sqrt(D))
        self.bo = nn.Parameter(torch.zeros(S, K))
        prev = torch.arange(P * S).reshape(P, S) * (K + 1)  # slot (lag-1, stage)
        cur = (P * S + torch.arange(S - 1)) * (K + 1)
        self.register_buffer("prev_off", prev, persistent=False)
        self.register_buffer("cur_off", cur, persistent=False)

    def hidden(self, ctx: torch.Tensor, n_q: torch.Tensor):
        """First layer ``h0 [B, S, D]`` for examples ``ctx [B, P + 1, S]`` (row 0 the current frame,
        row p the frame p back; code K = padding) with stage counts ``n_q [B]``."""
        S = self.cfg.stages
        prev = self.emb(ctx[:, 1:] + self.prev_off)  # [B, P, S, D]
        keep = (torch.arange(S, device=ctx.device)[None, :] < n_q[:, None]).to(prev.dtype)  # [B, S]
        h = (prev * keep[:, None, :, None]).sum(dim=(1, 2))[:, None, :]  # [B, 1, D]
        h = h + self.stage_bias + self.nq_bias[n_q][:, None, :]
        if self.cfg.lower_stages:
            cur = self.emb(ctx[:, 0, : S - 1] + self.cur_off)  # [B, S-1, D]
            pre = torch.cumsum(cur, dim=1)
            h = h + torch.cat([torch.zeros_like(pre[:, :1]), pre], dim=1)
        return h

    def forward(self, ctx: torch.Tensor, n_q: torch.Tensor):
        """Logits ``[B, S, K]`` and the activations ``(h0, z1)`` for calibration."""
        h0 = self.hidden(ctx, n_q)
        z1 = torch.einsum("bsd,sed->bse", torch.relu(h0), self.w1) + self.b1
        logits = torch.einsum("bsd,skd->bsk", torch.relu(z1), self.wo) + self.bo
        return logits, (h0, z1)


def load_tokens(folders, stages: int = 12) -> list[np.ndarray]:
    """The codes of every ``.npy`` token file under ``folders`` (``rotcodec tokenize --format npy``),
    one int16 array ``[F, stages]`` per file and channel (files with fewer stages are skipped)."""
    out = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.npy")):
            codes = np.load(path, allow_pickle=False)
            if codes.ndim == 3 and codes.shape[1] >= stages and codes.shape[2] > 0:
                out.extend(np.ascontiguousarray(c[:stages].T.astype(np.int16)) for c in codes)
    return out


class _Examples:
    """Frames of a list of code arrays with ``P`` frames of context (padding code K before each start)."""

    def __init__(self, arrays: list[np.ndarray], P: int, K: int):
        pad = np.full((P, arrays[0].shape[1]), K, dtype=np.int16)
        parts, starts, pos = [], [], 0
        for a in arrays:
            parts += [pad, a]
            starts.append(np.arange(pos + P, pos + P + len(a)))
            pos += P + len(a)
        self.data = torch.from_numpy(np.concatenate(parts).astype(np.int64))
        self.index = torch.from_numpy(np.concatenate(starts))
        self.P = P

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        """``ctx [B, P + 1, S]`` for frame numbers ``idx`` (row 0 the frame itself)."""
        rows = self.index[idx][:, None] - torch.arange(self.P + 1)[None, :]
        return self.data[rows]


def _draw_nq(cfg: FitConfig, n: int, gen: torch.Generator) -> torch.Tensor:
    any_nq = torch.randint(1, cfg.stages + 1, (n,), generator=gen)
    choices = torch.tensor([n for n in cfg.nq_choices if n <= cfg.stages] or [cfg.stages])
    pick = choices[torch.randint(len(choices), (n,), generator=gen)]
    return torch.where(torch.rand(n, generator=gen) < 0.5, pick, any_nq)


def _loss(net: ContextNet, ctx: torch.Tensor, n_q: torch.Tensor):
    logits, _ = net(ctx, n_q)
    S = net.cfg.stages
    ce = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ctx[:, 0].reshape(-1),
                                     reduction="none").reshape(-1, S)
    mask = (torch.arange(S)[None, :] < n_q[:, None]).to(ce.dtype)
    return (ce * mask).sum() / mask.sum() / math.log(2), ce.detach(), mask


@torch.no_grad()
def stage_bits(net: ContextNet, arrays: list[np.ndarray], n_q: int, batch: int = 2048) -> np.ndarray:
    """Mean bits per code of each stage ``< n_q`` under the float network: ``[n_q]``."""
    ex = _Examples(arrays, net.cfg.prev_frames, net.cfg.codebook_size)
    total = torch.zeros(net.cfg.stages)
    for i in range(0, len(ex), batch):
        idx = torch.arange(i, min(i + batch, len(ex)))
        _, ce, _ = _loss(net, ex.batch(idx), torch.full((len(idx),), n_q))
        total += ce.sum(0)
    return (total[:n_q] / len(ex) / math.log(2)).numpy()


def fit(train: list[np.ndarray], valid: list[np.ndarray], cfg: FitConfig, log=print) -> ContextNet:
    """Train a :class:`ContextNet` on code arrays ``[F, S]`` for ``cfg.minutes`` of wall time
    (cosine learning-rate decay over that time) or ``cfg.steps`` steps, whichever ends first;
    returns it in eval mode."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = ContextNet(cfg)
    ex = _Examples(train, cfg.prev_frames, cfg.codebook_size)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, step, seconds = time.monotonic(), 0, cfg.minutes * 60
    log(f"fit: {len(ex)} frames, {sum(p.numel() for p in net.parameters())} parameters, {cfg.minutes} min")
    while (elapsed := time.monotonic() - start) < seconds and not (cfg.steps and step >= cfg.steps):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * elapsed / seconds))
        idx = torch.randint(len(ex), (cfg.batch_size,), generator=gen)
        loss, _, _ = _loss(net, ex.batch(idx), _draw_nq(cfg, cfg.batch_size, gen))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % cfg.valid_every == 0:
            net.eval()
            bits = [float(stage_bits(net, valid, n).mean()) for n in cfg.nq_choices] if valid else []
            net.train()
            log(f"step {step} ({elapsed / 60:.1f} min): train {loss.item():.3f} bits/code; valid at "
                f"{'/'.join(map(str, cfg.nq_choices))} stages {' / '.join(f'{b:.3f}' for b in bits)}")
    return net.eval()


def _requant(ratio: np.ndarray, bits: int = 24) -> tuple[np.ndarray, int]:
    """Integer multipliers and one shift with ``m / 2**shift ~= ratio`` (largest ``m`` near ``2**bits``)."""
    ratio = np.asarray(ratio, dtype=np.float64)
    top = float(np.abs(ratio).max()) or 1.0
    shift = int(min(62, max(1, bits - math.ceil(math.log2(top)))))
    return np.round(ratio * 2.0**shift).astype(np.int64), shift


def _int8_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantisation per last-axis row: ``(q int8, scale)`` with ``w ~= q * scale``."""
    scale = np.abs(w).max(axis=-1) / 127.0
    scale = np.where(scale > 0, scale, 1.0)
    return np.clip(np.round(w / scale[..., None]), -127, 127).astype(np.int8), scale


@torch.no_grad()
def quantise(net: ContextNet, calib: torch.Tensor, calib_nq: torch.Tensor, codec: str = "",
             codec_hash: str = "") -> IntContextModel:
    """The integer model of ``net``. Activation maxima come from the examples ``calib [B, P+1, S]``
    with stage counts ``calib_nq [B]`` (the 99.99th percentile of each layer's positive part)."""
    cfg = net.cfg
    K, S, D, A, Q = cfg.codebook_size, cfg.stages, cfg.width, cfg.act_max, cfg.logit_steps
    _, (h0, z1) = net(calib, calib_nq)
    clip0 = max(float(torch.quantile(torch.relu(h0).flatten()[:1_000_000], 0.9999)), 1e-3)
    clip1 = max(float(torch.quantile(torch.relu(z1).flatten()[:1_000_000], 0.9999)), 1e-3)
    step0, step1 = clip0 / A, clip1 / A
    emb = net.emb.weight.numpy().astype(np.float64).reshape(net.tables, K + 1, D)
    if not cfg.lower_stages:
        emb[cfg.prev_frames * S:] = 0.0
    q_emb, row_scale = _int8_rows(emb)
    u0 = float(row_scale.max()) / 4096  # the unit of h0: row multipliers up to 4096
    mult = np.round(row_scale / u0).astype(np.int32)
    stage_bias = np.round(net.stage_bias.numpy() / u0).astype(np.int64)
    nq_bias = np.round(net.nq_bias.numpy() / u0).astype(np.int64)
    m0, sh0 = _requant(np.array(u0 / step0))
    q_w1, s_w1 = _int8_rows(net.w1.numpy().astype(np.float64))  # [S, D, D], [S, D]
    u1 = step0 * s_w1
    b1 = np.round(net.b1.numpy() / u1).astype(np.int64)
    m1, sh1 = _requant(u1 / step1)
    q_wo, s_wo = _int8_rows(net.wo.numpy().astype(np.float64))  # [S, K, D], [S, K]
    uo = step1 * s_wo
    bo = np.round(net.bo.numpy() / uo).astype(np.int64)
    mo, sho = _requant(uo * Q)
    lut = np.maximum(1, np.round(65536 * np.exp(-np.arange(12 * Q + 1) / Q))).astype(np.int64)
    meta = {"format": FILE_FORMAT, "K": K, "S": S, "P": cfg.prev_frames, "D": D, "A": A, "Q": Q,
            "m0": int(m0), "sh0": sh0, "sh1": sh1, "sho": sho, "codec": codec, "codec_hash": codec_hash,
            "lower_stages": cfg.lower_stages}
    arrays = {"emb": q_emb, "mult": mult, "stage_bias": stage_bias, "nq_bias": nq_bias, "w1": q_w1, "b1": b1,
              "m1": m1, "wo": q_wo, "bo": bo, "mo": mo, "lut": lut}
    return IntContextModel(meta, arrays)


def calibration(arrays: list[np.ndarray], cfg: FitConfig, n: int = 4096, seed: int = 1):
    """``(ctx, n_q)`` examples for :func:`quantise`, drawn from ``arrays`` as in training."""
    gen = torch.Generator().manual_seed(seed)
    ex = _Examples(arrays, cfg.prev_frames, cfg.codebook_size)
    return ex.batch(torch.randint(len(ex), (n,), generator=gen)), _draw_nq(cfg, n, gen)


def _config(recipe: dict, overrides: list[str]) -> tuple[FitConfig, dict]:
    section = dict(recipe.get("entropy", {}))
    for item in overrides:
        key, _, value = item.partition("=")
        section[key.strip()] = tomllib.loads(f"v = {value}")["v"]
    names = {f.name for f in fields(FitConfig)}
    cfg = FitConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in section.items() if k in names})
    return cfg, {k: v for k, v in section.items() if k not in names}


def main(argv: list[str] | None = None) -> int:
    """``python -m rotcodec.entropy.fit RECIPE --out MODEL.npz [--set key=value ...]``."""
    parser = argparse.ArgumentParser(prog="python -m rotcodec.entropy.fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", help="TOML file with an [entropy] table (see recipes/entropy/stft16k_cpu.toml)")
    parser.add_argument("--out", required=True, help="the integer context model to write (.npz)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe value")
    args = parser.parse_args(argv)
    with open(args.recipe, "rb") as f:
        cfg, rest = _config(tomllib.load(f), args.set)
    torch.set_num_threads(int(rest.get("threads", 1)))
    train = load_tokens(rest["train_tokens"], cfg.stages)
    valid = load_tokens(rest.get("valid_tokens", []), cfg.stages)
    if not train:
        parser.error(f"no token files of {cfg.stages} or more stages under {', '.join(map(str, rest['train_tokens']))} "
                     "(make them with rotcodec tokenize --format npy)")
    manifest = Path(rest["train_tokens"][0]) / "manifest.jsonl"
    first = json.loads(manifest.read_text().splitlines()[0]) if manifest.is_file() else {}
    net = fit(train, valid, cfg)
    ctx, n_q = calibration(train, cfg)
    model = quantise(net, ctx, n_q, codec=first.get("model", ""), codec_hash=first.get("model_hash", ""))
    model.save(args.out)
    print(f"wrote {args.out}: context model {model.digest} for codec {model.meta['codec']} "
          f"(weights {model.meta['codec_hash']})")
    for n_q in cfg.nq_choices if valid else ():  # what quantisation cost, on the validation tokens
        float_bits = float(stage_bits(net, valid, n_q).mean())
        int_bits = sum(model.code_bits(a[:, :n_q].T[None]).sum() for a in valid)
        int_bits /= sum(len(a) for a in valid) * n_q
        print(f"valid, {n_q} stages: float {float_bits:.4f}, integer {int_bits:.4f} bits/code")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
