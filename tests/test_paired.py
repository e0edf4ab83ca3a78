"""benchmarks/paired.py: clip-by-clip differences of two scorings of the same clips."""

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from paired import load, main, paired  # noqa: E402


def _score(kbps, pesq):
    return {"name": f"x {kbps}", "kbps_nominal": kbps, "pesq": None, "stoi": None, "si_sdr": 0.0,
            "per_clip": [{"pesq": p, "stoi": 0.9, "si_sdr": 1.0} for p in pesq]}


def test_paired_difference_its_standard_error_and_clips_up():
    a = [{"pesq": v} for v in (2.0, 3.0, 2.5, None)]
    b = [{"pesq": v} for v in (1.0, 3.5, 2.0, 2.0)]
    diff, se, up, n, ma, mb = paired(a, b, "pesq")  # the clip without a score in A is left out
    d = [1.0, -0.5, 0.5]
    mean = sum(d) / 3
    assert n == 3 and up == 2 and math.isclose(diff, mean)
    assert math.isclose(se, math.sqrt(sum((x - mean) ** 2 for x in d) / 2) / math.sqrt(3))
    assert math.isclose(ma, 2.5) and math.isclose(mb, 6.5 / 3)
    with pytest.raises(ValueError, match="same clips"):
        paired(a, b[:3], "pesq")


def test_scores_files_and_eval_lists_load_alike(tmp_path):
    listed = tmp_path / "eval.json"
    listed.write_text(json.dumps([_score(6.0, [2.0, 2.5])]))
    shipped = tmp_path / "m.scores.json"
    shipped.write_text(json.dumps({"round": 3, "scores": {"speech16k/valid": [_score(6.0, [2.0, 2.5])],
                                                          "voices16k/valid": [_score(6.0, [1.0, 1.0])]}}))
    assert load(listed) == load(shipped)
    assert load(shipped, "voices16k/valid")[6.0]["per_clip"][0]["pesq"] == 1.0
    with pytest.raises(ValueError, match="no scores for other"):
        load(shipped, "other")
    bare = tmp_path / "old.json"
    bare.write_text(json.dumps([{"name": "old", "kbps_nominal": 6.0, "pesq": 2.0}]))
    with pytest.raises(ValueError, match="per_clip"):
        load(bare)


def test_cli_pairs_bitrates_across_files(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps([_score(6.0, [2.7, 2.8, 2.9])]))
    b.write_text(json.dumps([_score(6.0, [2.0, 2.0, 2.0]), _score(8.0, [2.7, 2.9, 2.9])]))
    assert main([str(a), str(b), "--pair", "6:8", "--metric", "pesq"]) == 0
    out = capsys.readouterr().out
    assert "| 6 | 8 | pesq | 2.800 | 2.833 | -0.033 ± 0.033 | 0 of 3 |" in out
    assert main([str(a), str(b), "--metric", "pesq"]) == 0  # default: the bitrates both have
    assert "| 6 | 6 | pesq | 2.800 | 2.000 | +0.800 ± 0.058 | 3 of 3 |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no 8 kbps"):
        main([str(b), str(a), "--pair", "8:8"])
    with pytest.raises(SystemExit, match="KA:KB"):
        main([str(a), str(b), "--pair", "6"])
