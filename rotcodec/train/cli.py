"""``rotcodec train``: the command-line front of :func:`rotcodec.train.train`."""

from __future__ import annotations

import argparse
import logging

__all__ = ["add_parser"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train a codec from a recipe",
        description="Train a codec from a TOML recipe (see recipes/). Single process, or "
                    "`torchrun --nproc_per_node N -m rotcodec train ...` for several GPUs/processes.")
    p.add_argument("recipe", help="recipe TOML file, e.g. recipes/tiny_cpu.toml")
    p.add_argument("--data", action="append", required=True, metavar="DIR",
                   help="audio folder or manifest (repeatable)")
    p.add_argument("--valid", action="append", metavar="DIR",
                   help="explicit validation folder (repeatable); default: data.valid_percent of --data")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder (checkpoint.pt, model.pt, log.jsonl)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="sets",
                   help="override a recipe value, e.g. --set train.steps=500 (repeatable)")
    p.add_argument("--kbps", type=float, help="top bitrate: sets the number of stages from the preset")
    p.add_argument("--resume", action="store_true", help="continue RUN/checkpoint.pt exactly")
    p.add_argument("--init", metavar="MODEL", help="start from a saved model's weights (fresh optimizers)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from rotcodec.train.config import load_recipe
    from rotcodec.train.loop import train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    recipe = load_recipe(args.recipe, args.sets)
    if args.kbps is not None:
        recipe = recipe.with_kbps(args.kbps)
    result = train(recipe, args.data, args.out, resume=args.resume, valid=args.valid, init=args.init,
                  progress=not args.quiet)
    print(f"trained {result.state.step} steps; inference model: {args.out}/model.pt")
    return 0
