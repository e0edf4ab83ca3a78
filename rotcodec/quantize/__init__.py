"""Quantisation: gradient estimators, one VQ stage, and the residual VQ."""

from rotcodec.quantize.rotation import rotation_trick, straight_through
from rotcodec.quantize.rvq import ResidualVQ, RVQResult
from rotcodec.quantize.vq import VectorQuantizer, VQResult

__all__ = ["rotation_trick", "straight_through", "VectorQuantizer", "VQResult", "ResidualVQ", "RVQResult"]
