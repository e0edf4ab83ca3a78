"""What entropy coding saves: bits per code by stage and real kbps with and without it.

For every clip of the test folders (never trained on) at each bitrate, the bundled model codes the
clip once (its default beam, 4); the same codes are written bit-packed and entropy-coded (coding 1,
the bundled context model), both in the default format (4), both decoded again and compared. Writes:

* ``docs/entropy_bits.csv``: bits per code by stage on the top rate's codes (first channel; the
  speech model's 12 stages at 6 kbps) for the static
  per-stage table (order 0, counted on the training tokens, add-one smoothed), a context model over
  previous frames only (``--prev-only``, optional) and the shipped one (previous frames + lower
  stages); the last two are the integer models' exact table bits;
* ``docs/entropy_rate.csv``: real kbps bit-packed and entropy-coded, the paired mean saving per
  clip, whether every clip decoded to the same codes (and, for the timed clips, the same audio),
  and decoding speed (x real time, one torch thread) of the entropy decoder alone and of the whole
  ``rotcodec.decompress`` with and without it: wall time, and CPU time (``*_cpu``, what a quiet
  machine's wall time would be when other processes share the cores).

Commands (the tokens as recipes/entropy/*.toml make them)::

    python benchmarks/entropy_bits.py --tokens runs/entropy/tokens --prev-only runs/entropy/prev_only.npz \\
        --bits docs/entropy_bits.csv --rate docs/entropy_rate.csv
    python benchmarks/entropy_bits.py --model audio24k-cpu --sets unseensongs24k,effects24k/valid \\
        --rates 1.5,3,6,12 --tokens runs/entropy24/tokens --cache runs/entropy24/test \\
        --bits docs/entropy_bits_audio24k.csv --rate docs/entropy_rate_audio24k.csv
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch

import rotcodec
from rotcodec.entropy.bundled import for_codec
from rotcodec.entropy.fit import load_tokens
from rotcodec.entropy.model import load_context_model
from rotcodec.files import audio_files
from rotcodec.io.audio import read_audio
from rotcodec.io.container import PAYLOAD_ENTROPY, dumps, loads, loads_gains
from rotcodec.model.loading import weights_hash

CORPUS = Path.home() / ".cache" / "rotcodec-corpus"


def plain_files(model, folder: Path, kbps: float, cache: Path) -> list[tuple[str, bytes, float]]:
    """``(name, bit-packed .rcq bytes, seconds)`` of every clip, coded once and cached (the codes: the
    bytes are what today's writer writes for them, so an older format in the cache is rewritten)."""
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for rel in audio_files(folder):
        path = cache / (rel.with_suffix("").as_posix().replace("/", "__") + ".rcq")
        if not path.exists():
            wav, sr = read_audio(folder / rel)
            path.write_bytes(rotcodec.compress(wav, sr, model=model, kbps=kbps))
        data = dumps(*loads_gains(path.read_bytes()))
        header = loads(data)[0]
        out.append((rel.as_posix(), data, header.length / header.original_sample_rate))
    return out


def order0_bits(tokens: list[np.ndarray], codes: list[np.ndarray], K: int = 1024) -> np.ndarray:
    """Bits per code by stage of ``codes`` (each ``[n_q, F]``) under add-one per-stage counts of ``tokens``."""
    stages = codes[0].shape[0]
    counts = np.ones((stages, K))
    for a in tokens:
        for s in range(stages):
            counts[s] += np.bincount(a[:, s].astype(np.int64), minlength=K)
    logp = np.log2(counts / counts.sum(1, keepdims=True))
    total, n = np.zeros(stages), 0
    for c in codes:
        total += -np.take_along_axis(logp, c.astype(np.int64), axis=1).sum(1)
        n += c.shape[1]
    return total / n


def model_bits(model, codes: list[np.ndarray]) -> np.ndarray:
    total, n = np.zeros(codes[0].shape[0]), 0
    for c in codes:
        total += model.code_bits(c[None])[0].sum(1)
        n += c.shape[1]
    return total / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", default="runs/entropy/tokens", help="training tokens (order-0 counts)")
    parser.add_argument("--prev-only", help="a context model fitted without the lower stages (the ablation row)")
    parser.add_argument("--cache", default="runs/entropy/test", help="bit-packed test files, coded once")
    parser.add_argument("--bits", default="docs/entropy_bits.csv")
    parser.add_argument("--rate", default="docs/entropy_rate.csv")
    parser.add_argument("--timing-files", type=int, default=40, help="clips per set and rate timed through decompress")
    parser.add_argument("--limit", type=int, default=0, help="only the first N clips of each set (a quick check)")
    parser.add_argument("--model", default="stft16k-cpu", help="a bundled model with a context model")
    parser.add_argument("--sets", default="unseen16k,unseenx16k", help="test folders under the corpus")
    parser.add_argument("--rates", default="1.5,3,6", help="kbps; the bits table is of the last one")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    torch.set_num_threads(1)
    model = rotcodec.load_model(args.model)
    name, ctx = for_codec(args.model)
    print(f"context model {name} {ctx.digest}")
    tokens = load_tokens(sorted(Path(args.tokens).iterdir()), model.n_q)
    prev_only = load_context_model(args.prev_only) if args.prev_only else None
    bit_rows, rate_rows = [], []
    for set_name in args.sets.split(","):
        folder = CORPUS / set_name
        for kbps in rates:
            files = plain_files(model, folder, kbps, Path(args.cache) / weights_hash(model) / set_name / str(kbps))
            files = files[: args.limit] if args.limit else files
            kb_plain, kb_ent, same, seconds, dec_time, dec_cpu = [], [], True, 0.0, 0.0, 0.0
            channel0 = []
            for i, (clip, plain, secs) in enumerate(files):
                header, codes, gains = loads_gains(plain)
                coded = dataclasses.replace(header, coding=PAYLOAD_ENTROPY, context_model=name, context_hash=ctx.digest)
                data = dumps(coded, codes, gains, context_model=ctx)
                if i == 0:  # the API writes the same bytes
                    wav, sr = read_audio(folder / clip)
                    assert rotcodec.compress(wav, sr, model=model, kbps=kbps, entropy=True) == data
                    assert rotcodec.compress(wav, sr, model=model, kbps=kbps) == plain
                t, c = time.perf_counter(), time.process_time()
                back = loads_gains(data)
                dec_time += time.perf_counter() - t
                dec_cpu += time.process_time() - c
                same &= bool((back[1] == codes).all() and (back[2] == gains).all())
                kb_plain.append(len(plain) * 8 / secs / 1000)
                kb_ent.append(len(data) * 8 / secs / 1000)
                seconds += secs
                channel0.append(codes[0])
                if i < args.timing_files:  # the audio itself, both ways
                    t, c = time.perf_counter(), time.process_time()
                    a, _ = rotcodec.decompress(plain, model=model)
                    t_plain, c_plain = time.perf_counter() - t, time.process_time() - c
                    t, c = time.perf_counter(), time.process_time()
                    b, _ = rotcodec.decompress(data, model=model)
                    t_ent, c_ent = time.perf_counter() - t, time.process_time() - c
                    same &= torch.equal(a, b)
                    files[i] = (clip, plain, secs, t_plain, t_ent, c_plain, c_ent)
            timed = [f for f in files if len(f) == 7]
            timed_s = sum(f[2] for f in timed)
            kb_plain, kb_ent = np.array(kb_plain), np.array(kb_ent)
            saving = 100 * (1 - kb_ent / kb_plain)
            rate_rows.append({
                "set": set_name, "kbps": kbps, "stages": channel0[0].shape[0], "clips": len(files),
                "seconds": round(seconds, 1), "kbps_bitpacked": round(kb_plain.mean(), 3),
                "kbps_entropy": round(kb_ent.mean(), 3), "saving_pct": round(saving.mean(), 2),
                "saving_pct_ci95": round(1.96 * saving.std(ddof=1) / math.sqrt(len(saving)), 2),
                "saving_pct_min": round(saving.min(), 2), "same_codes_and_audio": same,
                "entropy_decode_x_rt": round(seconds / dec_time, 1),
                "entropy_decode_x_rt_cpu": round(seconds / dec_cpu, 1),
                "timed_clips": len(timed),
                "decompress_x_rt_bitpacked": round(timed_s / sum(f[3] for f in timed), 1),
                "decompress_x_rt_entropy": round(timed_s / sum(f[4] for f in timed), 1),
                "decompress_x_rt_bitpacked_cpu": round(timed_s / sum(f[5] for f in timed), 1),
                "decompress_x_rt_entropy_cpu": round(timed_s / sum(f[6] for f in timed), 1),
            })
            print(rate_rows[-1], flush=True)
            if kbps == rates[-1]:
                rows = {"order0": order0_bits(tokens, channel0)}
                if prev_only is not None:
                    rows["prev_frames"] = model_bits(prev_only, channel0)
                rows["prev_frames+lower_stages"] = model_bits(ctx, channel0)
                for predictor, bits in rows.items():
                    for s, b in enumerate(bits):
                        bit_rows.append({"set": set_name, "predictor": predictor, "stage": s + 1,
                                         "bits_per_code": round(float(b), 4)})
                    bit_rows.append({"set": set_name, "predictor": predictor, "stage": "mean",
                                     "bits_per_code": round(float(bits.mean()), 4)})
                    print(set_name, predictor, " ".join(f"{b:.2f}" for b in bits), f"mean {bits.mean():.3f}")
    for path, rows in ((args.bits, bit_rows), (args.rate, rate_rows)):
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
