"""``rotcodec ablate``: arms, plan, summary statistics, and a short real run through the CLI."""

import json
import math
import statistics
from pathlib import Path

import pytest

from rotcodec.cli import main
from rotcodec.train.ablate import DEFAULT_ARMS, markdown_paired, markdown_summary, paired, parse_arms, plan, summarize
from rotcodec.train.config import load_recipe

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def test_parse_arms():
    assert parse_arms(None) == list(DEFAULT_ARMS) == parse_arms("all")
    assert parse_arms("ste:ema, rotation:none") == ["ste:ema", "rotation:none"]
    for bad in ("ste", "rotation:sometimes", "adam:ema", "ste:ema,ste:ema", ","):
        with pytest.raises(ValueError):
            parse_arms(bad)


def test_plan_differs_only_in_estimator_care_and_seed(tmp_path):
    runs = plan(["ste:none", "rotation:ema"], 2, tmp_path)
    assert [(r.arm, r.seed) for r in runs] == [("ste:none", 0), ("rotation:ema", 0), ("ste:none", 1), ("rotation:ema", 1)]
    assert runs[0].folder == tmp_path / "ste_none" / "seed0"
    recipes = [load_recipe(RECIPES / "tiny_cpu.toml", list(r.sets)) for r in runs]
    q = [r.model.quantizer for r in recipes]
    assert (q[0].estimator, q[0].codebook, q[0].dead_code_threshold) == ("ste", "loss", 0.0)
    assert (q[1].estimator, q[1].codebook, q[1].dead_code_threshold) == ("rotation", "ema", 0.05)
    assert [r.train.seed for r in recipes] == [0, 0, 1, 1]
    # nothing else changes between arms
    assert recipes[0].data == recipes[1].data and recipes[0].optim == recipes[1].optim
    assert recipes[0].model.strides == recipes[1].model.strides


def _row(arm, seed, mel, usage):
    return {"arm": arm, "seed": seed, "mel": mel, "pesq": 1.5, "pesq_mid": 1.2, "si_sdr": -3.0,
            "usage/0": usage, "usage/1": usage / 2, "perplexity/0": 10.0, "perplexity/1": 6.0,
            "qerr/0": 0.1, "qerr/1": 0.3, "qerr_rel/0": 0.2, "qerr_rel/1": 0.4}


def test_summary_is_mean_and_sample_std_over_seeds():
    rows = [_row("ste:ema", 0, 0.5, 0.4), _row("ste:ema", 1, 0.7, 0.8), _row("rotation:ema", 0, 0.4, 0.6)]
    ste, rot = summarize(rows)
    assert ste["arm"] == "ste:ema" and ste["seeds"] == 2
    assert ste["mel"] == pytest.approx(0.6) and ste["mel_std"] == pytest.approx(statistics.stdev([0.5, 0.7]))
    # usage: % averaged over stages per seed, then over seeds; per stage kept as seed means
    assert ste["usage"] == pytest.approx(100 * (0.3 + 0.6) / 2)
    assert ste["usage_stages"] == pytest.approx([0.6, 0.3])
    assert ste["qerr_rel"] == pytest.approx(0.3) and ste["qerr"] == pytest.approx(0.2)
    assert rot["seeds"] == 1 and math.isnan(rot["mel_std"])
    table = markdown_summary([ste, rot], 1, 2)
    lines = table.splitlines()
    assert len(lines) == 4 and lines[2].startswith("| ste | ema | 2 | 0.600 ± 0.141 |")
    assert "| rotation | ema | 1 | 0.400 |" in lines[3] and "(60/30)" in lines[2]


def test_paired_differences_are_per_seed_against_ste_with_the_same_care():
    rows = [_row("ste:ema", 0, 0.5, 0.4), _row("ste:ema", 1, 0.7, 0.8), _row("rotation:ema", 0, 0.4, 0.6),
            _row("rotation:ema", 1, 0.65, 0.8), _row("rotation:none", 0, 0.9, 0.1)]
    (pair,) = paired(rows)  # rotation:none has no ste:none to pair with
    assert pair["arm"] == "rotation:ema" and pair["versus"] == "ste:ema" and pair["seeds"] == 2
    assert pair["mel"]["diffs"] == pytest.approx([-0.1, -0.05]) and pair["mel"]["mean"] == pytest.approx(-0.075)
    assert pair["mel"]["std"] == pytest.approx(statistics.stdev([-0.1, -0.05]))
    assert pair["usage"]["diffs"] == pytest.approx([15.0, 0.0])  # usage % = 100 * mean(u, u / 2) = 75 u
    assert "| rotation:ema − ste:ema | 2 | -0.075 ± 0.035 [-0.100, -0.050] |" in markdown_paired([pair])


def _audio(folder: Path, n: int, seed: int) -> Path:
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        t = np.arange(16000) / 16000
        f0 = 100 + 200 * rng.random()
        x = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 5)) + 0.01 * rng.standard_normal(t.size)
        sf.write(folder / f"c{i}.wav", x.astype(np.float32), 16000)
    return folder


def test_ablate_cli_trains_evaluates_and_resumes(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    train, valid = _audio(tmp_path / "train", 4, 0), _audio(tmp_path / "valid", 2, 1)
    argv = ["ablate", str(RECIPES / "tiny_cpu.toml"), "--data", str(train), "--valid", str(valid),
            "--out", str(tmp_path / "abl"), "--seeds", "2", "--arms", "ste:ema,rotation:ema", "--valid-clips", "2",
            "--set", "train.steps=3", "--set", "train.valid_every=3", "--set", "train.log_every=1",
            "--set", "data.num_workers=0", "--set", "data.batch_size=2", "--set", "data.segment_seconds=0.25",
            "--set", "data.valid_seconds=0.5", "--set", "train.examples=0"]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "abl" / "results.json").read_text())
    assert [(r["arm"], r["seed"]) for r in report["results"]] == [
        ("ste:ema", 0), ("rotation:ema", 0), ("ste:ema", 1), ("rotation:ema", 1)]
    assert report["top_stages"] == 4 and report["mid_stages"] == 2 and report["valid_clips"] == 2
    for r in report["results"]:
        assert r["mel"] > 0 and r["mel_mid"] > 0 and len([k for k in r if k.startswith("usage/")]) == 4
    assert (tmp_path / "abl" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "abl" / "summary.md").read_text().strip() in out
    assert "| rotation:ema − ste:ema | 2 |" in out and len(report["paired"]) == 1
    mtime = (tmp_path / "abl" / "ste_ema" / "seed0" / "model.pt").stat().st_mtime
    assert main(argv) == 0  # everything done: nothing retrained, same results
    assert "(4 already done)" in capsys.readouterr().out
    assert (tmp_path / "abl" / "ste_ema" / "seed0" / "model.pt").stat().st_mtime == mtime
    assert json.loads((tmp_path / "abl" / "results.json").read_text())["results"] == report["results"]
