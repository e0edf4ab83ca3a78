"""benchmarks/average_weights.py: the mean of state dicts, with prefixes and non-float buffers kept from the last."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from average_weights import average_state  # noqa: E402


def _state(w, q, n):
    return {"encoder.w": torch.tensor([w, 2 * w]), "quantizer.embed": torch.tensor([q]), "quantizer.initialized": torch.tensor(n)}


def test_float_tensors_are_averaged_and_the_rest_comes_from_the_last_state():
    out = average_state([_state(1.0, 10.0, False), _state(3.0, 30.0, True)])
    assert torch.equal(out["encoder.w"], torch.tensor([2.0, 4.0]))
    assert torch.equal(out["quantizer.embed"], torch.tensor([20.0]))
    assert bool(out["quantizer.initialized"]) is True


def test_keep_last_takes_the_prefix_from_the_last_state_unaveraged():
    out = average_state([_state(1.0, 10.0, False), _state(3.0, 30.0, True), _state(5.0, 50.0, True)], ("quantizer",))
    assert torch.equal(out["encoder.w"], torch.tensor([3.0, 6.0]))
    assert torch.equal(out["quantizer.embed"], torch.tensor([50.0]))
    assert out["encoder.w"].dtype == torch.float32
