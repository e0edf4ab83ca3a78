"""``rotcodec train`` and ``rotcodec ablate``: the command-line fronts of :func:`rotcodec.train.train`
and :func:`rotcodec.train.ablate.ablate`."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

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
    p.add_argument("--init", metavar="MODEL",
                   help="start from a model's weights (fresh optimizers): a model file, or a bundled model's name "
                        "such as the default (see `rotcodec/pretrained/`)")
    p.add_argument("--warm-start", metavar="MODEL",
                   help="start from a model of another config (another sample rate, more stages) where its "
                        "weights' names and shapes match the recipe's model; the rest starts fresh")
    p.add_argument("--name", default=None,
                   help="the model's name, written in its token files (default: the run folder's name, "
                        "unless --set model.name=... gives one)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    _add_ablate(subparsers)
    return p


def _add_ablate(subparsers) -> None:
    from rotcodec.train.ablate import CARE, DEFAULT_ARMS, ESTIMATORS

    p = subparsers.add_parser(
        "ablate", help="train and compare gradient estimators (rotation vs straight-through) on one recipe",
        description="Train RECIPE once per arm and seed (same data, steps and seeds), evaluate every run "
                    "on the --valid clips, and write OUT/results.json, OUT/summary.md and OUT/curves.png. "
                    f"Arms are ESTIMATOR:CARE, ESTIMATOR in {ESTIMATORS}, CARE in {tuple(CARE)} "
                    "(none: learned codebook; reset: learned + dead-code reset; ema: EMA + reset; "
                    "simvq: frozen codebook through a learned map + reset). "
                    "Rerunning the same command continues an interrupted ablation.")
    p.add_argument("recipe", help="recipe TOML file, e.g. recipes/tiny_cpu.toml")
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="training audio (repeatable)")
    p.add_argument("--valid", action="append", required=True, metavar="DIR",
                   help="held-out audio for validation and the final evaluation (repeatable)")
    p.add_argument("--out", required=True, metavar="DIR", help="ablation folder (one run folder per arm and seed)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per arm (default 3)")
    p.add_argument("--arms", default=None, help=f"comma-separated arms (default: {','.join(DEFAULT_ARMS)})")
    p.add_argument("--jobs", type=int, default=2, help="runs trained at once (default 2); threads are split")
    p.add_argument("--valid-clips", type=int, default=48, help="clips in the final evaluation (default 48)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="sets",
                   help="override a recipe value for every run, e.g. --set train.steps=600")
    p.add_argument("--no-plot", action="store_true", help="skip curves.png (no matplotlib needed)")
    p.set_defaults(func=run_ablate)


def run_ablate(args: argparse.Namespace) -> int:
    from rotcodec.train.ablate import ablate, parse_arms

    if args.seeds < 1 or args.jobs < 1:
        raise ValueError("--seeds and --jobs must be >= 1")
    report = ablate(args.recipe, args.data, args.valid, args.out, seeds=args.seeds, arms=parse_arms(args.arms),
                    jobs=args.jobs, sets=args.sets, valid_clips=args.valid_clips, plot=not args.no_plot)
    print()
    print(report["table"])
    print(f"\n{report['valid_clips']} validation clips of {report['valid_seconds']:g} s; "
          f"results in {args.out}/results.json, table in {args.out}/summary.md")
    return 0


def _warm_start(source: str, recipe):
    """A model of the recipe's config holding the weights of ``source`` where they fit."""
    from rotcodec.api import load_model
    from rotcodec.model.codec import Codec
    from rotcodec.model.growth import warm_start_state

    trained = load_model(source)
    codec = Codec(recipe.model)
    state, left = warm_start_state(trained.state_dict(), codec.state_dict())
    codec.load_state_dict(state)
    logging.getLogger("rotcodec.train").info(
        "--warm-start %s: %d of %d tensors carried; fresh: %s", source, len(state) - len(left), len(state),
        ", ".join(sorted({k.rsplit(".", 1)[0] for k in left})) or "none")
    return codec


def run(args: argparse.Namespace) -> int:
    from rotcodec.train.config import load_recipe
    from rotcodec.train.loop import train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sets = list(args.sets)
    if args.name is not None or not any(s.split("=", 1)[0].strip() == "model.name" for s in sets):
        # A model trained from a bundled recipe must not pass for the bundled model (token files
        # name the model that made them): it takes the run's name unless one is given.
        name = args.name if args.name is not None else Path(args.out).resolve().name
        sets.append(f"model.name={json.dumps(name)}")
    recipe = load_recipe(args.recipe, sets)
    if args.kbps is not None:
        recipe = recipe.with_kbps(args.kbps)
    init = None
    if args.init is not None:
        from rotcodec.api import load_model  # a model file or a bundled model's name

        init = load_model(args.init)  # train() puts it in training mode
    if args.warm_start is not None:
        if init is not None:
            raise ValueError("--init and --warm-start: give one")
        init = _warm_start(args.warm_start, recipe)
    result = train(recipe, args.data, args.out, resume=args.resume, valid=args.valid, init=init,
                  progress=not args.quiet)
    print(f"trained {result.state.step} steps; inference model: {args.out}/model.pt")
    return 0
