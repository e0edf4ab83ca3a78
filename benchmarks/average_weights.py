"""Average the weights of model files of one run (a stand-in for an EMA of the weights).

    python benchmarks/average_weights.py OUT.pt runs/round8/model.pt runs/round9/model.pt [--keep-last quantizer]

Every floating-point tensor of the state dicts (parameters and buffers) is averaged with equal
weights; integer and boolean buffers, and every tensor whose name starts with a ``--keep-last``
prefix, are taken from the last file. The files must hold the same model config. OUT is written
in half precision, as the shipped files are, ready for ``rotcodec eval --model OUT``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import rotcodec


def average_state(states: list[dict[str, torch.Tensor]], keep_last: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """The equal-weight mean of ``states`` (float tensors), the last state's value elsewhere."""
    out = {}
    for name, value in states[-1].items():
        if not value.is_floating_point() or name.startswith(keep_last):
            out[name] = value
        else:
            out[name] = torch.stack([s[name].double() for s in states]).mean(0).to(value.dtype)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("models", nargs="+")
    p.add_argument("--keep-last", action="append", default=[], metavar="PREFIX",
                   help="take tensors whose name starts with PREFIX from the last file (e.g. quantizer)")
    p.add_argument("--force", action="store_true", help="overwrite OUT")
    args = p.parse_args(argv)
    if Path(args.out).exists() and not args.force:
        raise SystemExit(f"{args.out} exists; pass --force to overwrite it")
    models = [rotcodec.load_model(m) for m in args.models]
    if any(m.config != models[0].config for m in models):
        raise SystemExit("the model files hold different model configs")
    models[-1].load_state_dict(average_state([m.state_dict() for m in models], tuple(args.keep_last)))
    models[-1].save(args.out, half=True)
    print(f"wrote {args.out}: the mean of {len(models)} files" +
          (f", {', '.join(args.keep_last)} from the last" if args.keep_last else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
