"""Bits a code of context models on the same cached test codes: compare refits of a context model.

Reads the bit-packed test files that ``benchmarks/entropy_bits.py`` cached (``--cache``, by weights
hash, set and rate) and prints, for each set, the mean exact code length (bits a code, first
channel) of every context model given::

    python benchmarks/context_bits.py rotcodec/pretrained/stft16k-cpu.entropy.npz runs/entropy16/wd10.npz \\
        --cache runs/entropy16/test/8150317d9ae164e7 --sets unseen16k,unseenx16k --kbps 6.0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rotcodec.entropy.model import load_context_model
from rotcodec.io.container import loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="context models (.npz)")
    parser.add_argument("--cache", required=True, help="the cached test files of one codec's weights")
    parser.add_argument("--sets", default="unseen16k,unseenx16k")
    parser.add_argument("--kbps", default="6.0")
    args = parser.parse_args()
    models = {Path(p).name: load_context_model(p) for p in args.models}
    for set_name in args.sets.split(","):
        files = sorted((Path(args.cache) / set_name / args.kbps).glob("*.rcq"))
        codes = [loads(p.read_bytes())[1][:1] for p in files]
        bits = {name: sum(m.code_bits(c).sum() for c in codes) / sum(c.size for c in codes)
                for name, m in models.items()}
        print(f"{set_name} ({len(codes)} clips, {args.kbps} kbps): "
              + " | ".join(f"{name} {b:.4f}" for name, b in bits.items()))


if __name__ == "__main__":
    main()
