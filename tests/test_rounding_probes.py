"""benchmarks/rounding.py: the beam search and the codebook refit it measures."""

import importlib.util
import itertools
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # as when the script runs: it imports its sibling limits.py
_spec = importlib.util.spec_from_file_location("rounding_probe", ROOT / "benchmarks" / "rounding.py")
rounding = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rounding)


def _brute_force(tables, target):
    best = min(itertools.product(*(range(t.shape[0]) for t in tables)),
               key=lambda combo: float((target - sum(t[c] for t, c in zip(tables, combo))).pow(2).sum()))
    return list(best)


def test_a_wide_beam_finds_the_best_codes_and_greedy_may_not():
    g = torch.Generator().manual_seed(0)
    tables = [torch.randn(4, 3, generator=g) * s for s in (1.0, 0.6, 0.4)]
    targets = torch.randn(40, 3, generator=g)
    wide = rounding.beam_codes(tables, targets, width=64)     # 4^3 = 64 paths: exhaustive
    greedy = rounding.beam_codes(tables, targets, width=1)
    assert wide.shape == (3, 40)
    worse = 0
    for i, target in enumerate(targets):
        assert wide[:, i].tolist() == _brute_force(tables, target)
        err = lambda codes: float((target - sum(t[c] for t, c in zip(tables, codes.tolist()))).pow(2).sum())
        assert err(wide[:, i]) <= err(greedy[:, i]) + 1e-6
        worse += err(greedy[:, i]) > err(wide[:, i]) + 1e-6
    assert worse > 0  # greedy misses the best path somewhere, so the probe can tell them apart


def test_lloyd_lowers_the_error_and_keeps_unused_codes():
    g = torch.Generator().manual_seed(1)
    vectors = torch.cat([torch.randn(200, 2, generator=g) * 0.1 + c for c in (torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.0]))])
    start = torch.tensor([[0.5, 0.0], [-0.5, 0.0], [0.0, 50.0]])  # the third is nobody's nearest
    fitted = rounding.lloyd(vectors, start, iters=5)
    assert rounding.relative_error(vectors, fitted) < rounding.relative_error(vectors, start)
    assert torch.allclose(fitted[:2].abs(), torch.tensor([[2.0, 0.0], [2.0, 0.0]]), atol=0.05)
    assert torch.equal(fitted[2], start[2])
