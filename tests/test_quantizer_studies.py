"""benchmarks/quantizer_surgery.py and benchmarks/estimators.py: their pure pieces (arms, the
rounding cost per clip and its pairing, strict JSON) and benchmarks/stage_efficiency.py's reference."""

import argparse
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from estimators import finite  # noqa: E402
from quantizer_surgery import STAGES, cost_rows, parse_arm, summarize  # noqa: E402


def test_arms_parse_and_bad_ones_are_refused():
    assert parse_arm("control=") == ("control", [])
    assert parse_arm("simvq=model.quantizer.codebook=simvq; optim.lr=1e-4") == (
        "simvq", ["model.quantizer.codebook=simvq", "optim.lr=1e-4"])
    for bad in ("simvq", "=x"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_arm(bad)


def _rows(ceiling, coded, usage=(0.5, 0.25)):
    rows = {}
    for n in STAGES:
        rows[f"{n}/ceiling"] = {"pesq": sum(ceiling) / len(ceiling), "per_clip": [{"pesq": v} for v in ceiling]}
        rows[f"{n}/greedy"] = {"pesq": sum(coded) / len(coded), "per_clip": [{"pesq": v} for v in coded]}
        rows[f"{n}/beam4"] = rows[f"{n}/greedy"]
    return {"rows": rows, "clips": len(ceiling), "usage": list(usage), "perplexity": [10.0, 20.0]}


def test_rounding_cost_is_ceiling_minus_coded_per_clip_and_pairs_against_the_control():
    control = _rows([3.0, 3.2, 2.8], [2.5, 2.6, 2.4])
    better = _rows([3.0, 3.2, 2.8], [2.7, 2.7, 2.6])  # rounds cheaper on every clip
    assert [r["pesq"] for r in cost_rows(control["rows"], 12, 4)] == pytest.approx([0.5, 0.6, 0.4])
    unscored = _rows([3.0, 3.2, 2.8], [2.5, 2.6, 2.4])
    unscored["rows"]["12/beam4"]["per_clip"][1]["pesq"] = None  # PESQ failed on a clip: no cost
    assert cost_rows(unscored["rows"], 12, 4)[1]["pesq"] is None
    summary = summarize({"control": {"f": control}, "new": {"f": better}}, "control", 4)
    new = [r for r in summary if r["model"] == "new" and r["stages"] == 12][0]
    assert new["cost"] == pytest.approx(3.0 - 2.6667, abs=1e-3)
    assert new["cost_vs_control"] == pytest.approx(-(0.2 + 0.1 + 0.2) / 3, abs=1e-4)
    assert new["beam4_vs_control"] == pytest.approx(-new["cost_vs_control"], abs=1e-4)
    assert new["ceiling_vs_control"] == 0 and new["usage_mean"] == pytest.approx(0.375)
    assert "cost_vs_control" not in [r for r in summary if r["model"] == "control"][0]


def test_finite_turns_nan_into_null_everywhere():
    assert finite({"a": [1.0, math.nan, {"b": math.inf}], "c": "x"}) == {"a": [1.0, None, {"b": None}], "c": "x"}


def test_kmeans_on_a_gaussian_sits_above_the_shannon_bound_and_falls_with_more_codes():
    from stage_efficiency import kmeans_gaussian

    small, large = (kmeans_gaussian(k, 2, n=4000, iters=10) for k in (4, 16))
    assert 16 ** (-2 / 2) < large < small < 1.0
    assert kmeans_gaussian(4, 2, n=4000, iters=10) == small  # seeded: the same reference every time
