"""How often float32 codes differ between whole / chunked / batched / streamed coding, on samples/.

The signal is conditioned as every encode path conditions it (rotcodec.coding.conditioning): the
model-rate coders get the conditioned clip, the StreamEncoder conditions the raw one itself.

Usage: OMP_NUM_THREADS=1 python benchmarks/token_identity.py [MODEL]   (default: the bundled model)
"""

import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import rotcodec
from rotcodec.coding import StreamEncoder, encode_batch, encode_chunked, resample_stream
from rotcodec.coding.conditioning import GAIN_FRAMES, condition

SAMPLES = sorted((Path(__file__).resolve().parent.parent / "samples").glob("*.wav"))


def model_rate(path: Path, sample_rate: int) -> torch.Tensor:
    wav, sr = sf.read(path, dtype="float32", always_2d=True)
    x = torch.from_numpy(wav.T.copy())
    return torch.cat(list(resample_stream([x], x.shape[-1], sr, sample_rate)), dim=-1)


def streamed(model, wav: torch.Tensor, seed: int) -> torch.Tensor:
    enc, rng, parts, i = StreamEncoder(model), np.random.default_rng(seed), [], 0
    while i < wav.shape[-1]:
        n = int(rng.integers(1, 3000))
        parts.append(enc.push(wav[:, i: i + n]))
        i += n
    return torch.cat(parts + [enc.flush()], dim=-1)


def main() -> None:
    torch.set_num_threads(1)
    model = rotcodec.load_model(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"model {model.config.name} ({model.config.arch}), float32, clips: {[p.name for p in SAMPLES]}")
    raw = [model_rate(p, model.sample_rate) for p in SAMPLES]
    wavs = [condition(w, GAIN_FRAMES * model.hop_length)[0] for w in raw]
    batched = encode_batch(model, wavs)
    counts: dict[str, list[int]] = {}
    for i, wav in enumerate(wavs):
        whole = model.encode(wav[:, None])
        ways = {f"chunks of {c}": encode_chunked(model, wav, chunk_frames=c) for c in (1, 7, 64, 250)}
        ways["batched"] = batched[i]
        ways["streamed"] = streamed(model, raw[i], i)
        for name, codes in ways.items():
            diff, total = counts.setdefault(name, [0, 0])
            counts[name] = [diff + int((codes != whole).sum()), total + whole.numel()]
    for name, (diff, total) in counts.items():
        print(f"{name}: {diff} of {total} codes differ from whole ({100 * diff / total:.3f} %)")


if __name__ == "__main__":
    main()
