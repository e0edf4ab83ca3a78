"""Training: recipes, data, losses, discriminators, step functions, the loop and checkpoints.

Importing this package loads only the recipe dataclasses; :func:`train` (and with it torch) loads on
first use, so that ``rotcodec train --help`` stays fast.
"""

from rotcodec.train.config import Recipe, load_recipe

__all__ = ["Recipe", "load_recipe", "train"]


def __getattr__(name: str):
    if name == "train":
        from rotcodec.train.loop import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
