"""Compute cost of streaming: StreamDecoder / StreamEncoder speed against real time, one thread.

Each push recomputes the model's context, so pushing one frame at a time costs far more than
decoding the whole file at once; this measures how much, for pushes of 1 and 5 frames.

    OMP_NUM_THREADS=1 python benchmarks/stream_cost.py [--model stft16k-cpu] [--file samples/speech_en.wav]
"""

from __future__ import annotations

import argparse
import time

import torch

import rotcodec
from rotcodec.io.audio import read_audio


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="bundled name or model file (default: the default model)")
    p.add_argument("--file", default="samples/speech_en.wav", help="a clip at the model's sample rate")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = rotcodec.load_model(args.model)
    wav, sr = read_audio(args.file)
    if sr != model.sample_rate:
        raise SystemExit(f"{args.file} is at {sr} Hz; the model wants {model.sample_rate} Hz")
    x = torch.from_numpy(wav[:1]).float()
    seconds = x.shape[-1] / sr
    codes = model.encode(x[None])[0]  # [n_q, F], all stages
    print(f"{model.config.name}, {args.file} ({seconds:.1f} s), {args.threads} thread(s)")
    for frames in (1, 5):
        dec = rotcodec.StreamDecoder(model, min_frames=frames)
        t = time.perf_counter()
        for i in range(codes.shape[-1]):
            dec.push(codes[:, i:i + 1])
        dec.flush()
        print(f"decoder, min_frames={frames}: {seconds / (time.perf_counter() - t):.2f}x real time, "
              f"latency {dec.latency_ms:.0f} ms")
    for frames in (1, 5):
        enc = rotcodec.StreamEncoder(model)
        block = model.hop_length * frames
        t = time.perf_counter()
        for i in range(0, x.shape[-1], block):
            enc.push(x[0, i:i + block])
        enc.flush()
        print(f"encoder, {frames} frame(s) a push: {seconds / (time.perf_counter() - t):.2f}x real time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
