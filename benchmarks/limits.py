"""What limits a model's quality: the quantizer, or the encoder/decoder around it?

Scores one model on a folder of clips (PESQ-WB, STOI, SI-SDR, mel distance; the same metrics as
`rotcodec eval`) at several numbers of quantizer stages, each twice: quantized (what the codec
does), and "continuous", where every stage passes its projected residual on without rounding it
to a codeword (``out_proj(in_proj(r))``: a quantizer with no quantization error, the same path
otherwise). The continuous row is the ceiling the decoder could reach with a perfect quantizer.
If it is far above the quantized score, a better quantizer (codebooks, more stages) would pay;
if it is close, the encoder and decoder (their size, losses or training) hold the model back.

    python benchmarks/limits.py --model stft16k-cpu --data ~/.cache/rotcodec-corpus/speech16k/valid \\
        --stages 1,3,6,12 --continuous 3,6,12 --json runs/limits.json

Everything here is a forward pass (no files written but the JSON); the rounded rows code the
latent as the codec does, ``decode(encode(x, n_q))`` (the model's beam search, or ``--beam 1``:
greedy), and both kinds condition the input per gain block as the codec does (``--no-condition``:
as it comes, as rows measured before round 12 were).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
import torchaudio

import rotcodec
from rotcodec.coding import conditioning
from rotcodec.coding.conditioning import GAIN_FRAMES
from rotcodec.evaluate import audio_files, score_clips
from rotcodec.io.audio import read_audio


def continuous(model, latent: torch.Tensor, n_q: int) -> torch.Tensor:
    """The first ``n_q`` stages of the residual quantizer with no rounding to codewords."""
    residual, total = latent, torch.zeros_like(latent)
    for layer in model.quantizer.layers[:n_q]:
        out = layer.unproject(layer.project(residual))
        total, residual = total + out, residual - out
    return total


def forward_fn(model, n_q: int, rounded: bool, beam: int = 1, condition: bool = True):
    """A ``roundtrip(wav [C, T], sr) -> (decoded [C, T], bytes)`` through ``n_q`` stages, rounded
    to codewords (the codec; ``beam`` 1 is greedy, more searches code paths) or not
    (:func:`continuous`). ``condition``: the input is conditioned per gain block and the gains
    divided out after decoding, as the codec's encode and decode paths do."""
    block = GAIN_FRAMES * model.hop_length

    @torch.inference_mode()
    def roundtrip(wav: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
        x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
        if sr != model.sample_rate:
            x = torchaudio.functional.resample(x, sr, model.sample_rate)
        if condition:
            x, gains = conditioning.condition(x, block)
        latent = model.encoder(model._pad(x[:, None]))  # channels as a batch of mono clips
        if rounded:
            z = model.quantizer.decode(model.quantizer.encode(latent, n_q, beam))
        else:
            z = continuous(model, latent, n_q)
        y = model.decoder(z)[..., : x.shape[-1]][:, 0]
        if condition:
            y = conditioning.apply_gains(y, gains, block, inverse=True)
        if sr != model.sample_rate:
            y = torchaudio.functional.resample(y, model.sample_rate, sr)[..., : wav.shape[-1]]
        frames = -(-x.shape[-1] // model.hop_length) * x.shape[0]
        bits = int(frames * n_q * model.config.quantizer.bits) if rounded else 0
        return y.numpy(), bits // 8

    return roundtrip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="bundled name or model file (default: the default model)")
    p.add_argument("--data", required=True, help="folder of clips (e.g. the corpus speech16k/valid)")
    p.add_argument("--stages", default="1,3,6,12", help="numbers of quantizer stages to score")
    p.add_argument("--continuous", default="3,6,12", help="numbers of stages to score without rounding")
    p.add_argument("--limit", type=int, default=None, help="score only the first N files")
    p.add_argument("--every", type=int, default=1, help="score every K-th file (a spread sample of a big folder)")
    p.add_argument("--beam", type=int, default=None, help="encoder beam for the rounded rows (default: the model's)")
    p.add_argument("--no-condition", action="store_true", help="code the input as it comes (no gain blocks)")
    p.add_argument("--json", default=None, help="write the rows here")
    args = p.parse_args(argv)
    model = rotcodec.load_model(args.model)
    model.eval()
    clips = [read_audio(f) for f in audio_files(args.data)[::args.every][:args.limit]]
    runs = [(int(n), True) for n in args.stages.split(",") if n] + \
        [(int(n), False) for n in args.continuous.split(",") if n]
    if any(not 1 <= n <= model.n_q for n, _ in runs):
        raise SystemExit(f"stage counts must lie in 1..{model.n_q}")
    beam = model.config.quantizer.beam if args.beam is None else args.beam
    rows = []
    print(f"{model.config.name}: {len(clips)} clips from {args.data}", flush=True)
    print("| stages | codes | kbps | PESQ-WB | STOI | SI-SDR dB | mel |\n|---|---|---|---|---|---|---|")
    for n_q, rounded in runs:
        t = time.time()
        kbps = model.bitrate(n_q) / 1000
        s = score_clips(f"{n_q} {'rounded' if rounded else 'continuous'}", kbps if rounded else None, clips,
                        forward_fn(model, n_q, rounded, beam, not args.no_condition))
        print(f"| {n_q} | {'rounded' if rounded else 'continuous'} | {f'{kbps:g}' if rounded else '-'} | "
              f"{s.pesq:.3f} | {s.stoi:.3f} | {s.si_sdr:.2f} | {s.mel:.3f} |  ({time.time() - t:.0f} s)", flush=True)
        rows.append({**s.as_dict(), "stages": n_q, "rounded": rounded, "beam": beam if rounded else None})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "data": args.data, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
