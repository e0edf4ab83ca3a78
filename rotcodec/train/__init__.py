"""Training: recipes, data, losses, discriminators, step functions, the loop and checkpoints.

Importing this package does not import the training dependencies of plotting or PESQ.
"""

from rotcodec.train.config import Recipe, load_recipe
from rotcodec.train.loop import train

__all__ = ["Recipe", "load_recipe", "train"]
