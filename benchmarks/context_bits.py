"""Bits a code of context models on the same codes: compare refits, and heard against unheard voices.

Reads the bit-packed test files that ``benchmarks/entropy_bits.py`` cached (``--cache``, by weights
hash, set and rate; ``--sets``) and token folders of ``rotcodec tokenize --format npy`` (``--tokens``,
e.g. the ``valid`` halves of the training folders: voices the context model has heard, not these
clips), and prints, for each set and context model, the mean exact code length (bits a code under
the integer tables; the cached files' first channel, every channel of the token files, as the fit
reads them) over all stages and by stage; ``--csv`` writes the same as rows::

    python benchmarks/context_bits.py rotcodec/pretrained/stft16k-cpu.entropy.npz runs/entropy16/wd10.npz \\
        --cache runs/entropy16/test/8150317d9ae164e7 --sets unseen16k,unseenx16k --kbps 6.0 \\
        --tokens runs/entropy16/valid/tuxpaint16k --csv docs/entropy_sets.csv
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from rotcodec.entropy.fit import load_tokens
from rotcodec.entropy.model import load_context_model
from rotcodec.io.container import loads


def cached_codes(cache: str, set_name: str, kbps: str) -> list[np.ndarray]:
    """First-channel codes ``[1, n_q, F]`` of every cached ``.rcq`` of a set at a rate."""
    files = sorted((Path(cache) / set_name / kbps).glob("*.rcq"))
    return [loads(p.read_bytes())[1][:1] for p in files]


def token_codes(folder: str, stages: int) -> list[np.ndarray]:
    """Codes ``[1, stages, F]`` of every ``.npy`` token file in ``folder``, each channel one array
    (as the fit reads them: :func:`rotcodec.entropy.fit.load_tokens`)."""
    return [a.T[None].astype(np.int64) for a in load_tokens([folder], stages)]


def stage_bits(model, codes: list[np.ndarray]) -> np.ndarray:
    """Mean exact bits a code by stage ``[n_q]`` over every frame of ``codes``."""
    total = sum(model.code_bits(c)[0].sum(1) for c in codes)
    return total / sum(c.shape[-1] for c in codes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="context models (.npz)")
    parser.add_argument("--cache", help="the cached test files of one codec's weights")
    parser.add_argument("--sets", default="unseen16k,unseenx16k", help="cached sets ('' for none)")
    parser.add_argument("--kbps", default="6.0", help="the cached rate (its stage count is the token sets')")
    parser.add_argument("--tokens", nargs="*", default=[], help="token folders (.npy) to score as well")
    parser.add_argument("--csv", help="write set, clips, frames, model, bits and bits by stage here")
    args = parser.parse_args()
    models = {Path(p).name: load_context_model(p) for p in args.models}
    sets = {}
    for set_name in filter(None, args.sets.split(",")):
        if not args.cache:
            parser.error("--sets needs --cache")
        sets[set_name] = cached_codes(args.cache, set_name, args.kbps)
    stages = next((c[0].shape[1] for c in sets.values() if c), 12)
    for folder in args.tokens:
        path = Path(folder)  # runs/.../valid/tuxpaint16k -> "tuxpaint16k/valid"
        sets[f"{path.name}/{path.parent.name}"] = token_codes(folder, stages)
    rows = []
    for set_name, codes in sets.items():
        if not codes:
            raise SystemExit(f"no codes in {set_name}")
        for name, model in models.items():
            by_stage = stage_bits(model, codes)
            rows.append({"set": set_name, "clips": len(codes), "frames": sum(c.shape[-1] for c in codes),
                         "model": name, "bits": round(float(by_stage.mean()), 4),
                         **{f"stage{s + 1}": round(float(b), 3) for s, b in enumerate(by_stage)}})
            print(f"{set_name} ({len(codes)} clips): {name} {by_stage.mean():.4f} bits a code; by stage "
                  + " ".join(f"{b:.2f}" for b in by_stage), flush=True)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
