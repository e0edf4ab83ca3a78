"""Validation during training: reconstruction quality and per-stage codebook health on fixed clips."""

from __future__ import annotations

from pathlib import Path

import torch

from rotcodec.io.audio import write_audio
from rotcodec.model.codec import Codec
from rotcodec.quantize.codebook_ops import code_histogram, perplexity
from rotcodec.train.data import ValidSet

__all__ = ["validate", "write_examples"]


@torch.no_grad()
def validate(codec: Codec, valid: ValidSet, n_q: int | None = None) -> dict[str, float]:
    """Mean ``mel`` distance, ``si_sdr`` and ``pesq`` (PESQ-WB, when computable and the ``pesq``
    package is installed: a GPU machine may lack it, and training must not stop for it) over the clips at
    ``n_q`` stages (all by default), the ``mel`` at half the stages (``mel_half``), and per stage
    ``usage/i`` (fraction of codes used over all clips), ``perplexity/i``, ``lambda/i``, and the
    quantization error ``qerr/i`` (mean ||e - q||^2 in the stage's code space) and ``qerr_rel/i``
    (the same over mean ||e||^2). ``codec`` must be in eval mode."""
    import importlib.util

    from rotcodec.metrics import mel_distance, pesq_wb, si_sdr

    has_pesq = importlib.util.find_spec("pesq") is not None

    sr, k = codec.sample_rate, codec.config.quantizer.codebook_size
    n_q = n_q or codec.n_q
    half = max(1, n_q // 2)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    hists = [torch.zeros(k) for _ in range(n_q)]

    def add(name: str, value: float | None) -> None:
        if value is not None:
            sums[name] = sums.get(name, 0.0) + float(value)
            counts[name] = counts.get(name, 0) + 1

    device = next(codec.parameters()).device
    for clip in valid.clips:
        ref = clip[None].to(device)
        out = codec(ref, n_q)
        est = out.wav[0].float().cpu()
        add("mel", mel_distance(clip, est, sr))
        add("si_sdr", si_sdr(clip, est))
        add("pesq", pesq_wb(clip, est, sr) if has_pesq else None)
        add("mel_half", mel_distance(clip, codec.decode(out.codes[:, :half], ref.shape[-1])[0].float().cpu(), sr))
        for i in range(n_q):
            hists[i] += code_histogram(out.codes[:, i].cpu(), k)
            add(f"lambda/{i}", out.metrics[f"vq/lambda/{i}"])
            add(f"qerr/{i}", out.metrics[f"vq/qerr/{i}"])
            add(f"qerr_rel/{i}", out.metrics[f"vq/qerr_rel/{i}"])
    result = {name: sums[name] / counts[name] for name in sums}
    for i, h in enumerate(hists):
        result[f"usage/{i}"] = float((h > 0).float().mean())
        result[f"perplexity/{i}"] = float(perplexity(h))
    return result


@torch.no_grad()
def write_examples(codec: Codec, valid: ValidSet, folder: Path, count: int) -> None:
    """Write the first ``count`` validation clips and their decodings as ``i_ref.wav`` / ``i_dec.wav``."""
    if count <= 0 or not len(valid):
        return
    folder.mkdir(parents=True, exist_ok=True)
    device = next(codec.parameters()).device
    for i, clip in enumerate(valid.clips[:count]):
        est = codec(clip[None].to(device)).wav[0].float().cpu()
        write_audio(folder / f"{i}_ref.wav", clip, codec.sample_rate, force=True)
        write_audio(folder / f"{i}_dec.wav", est, codec.sample_rate, force=True)
