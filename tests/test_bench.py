"""``rotcodec bench``: the figures exist, are consistent, and the EnCodec comparison runs."""

import json

import numpy as np
import pytest
import torch

from rotcodec import api
from rotcodec.bench import _ratio, bench_api, bench_encodec, bench_model, bench_train, markdown, speech_like, time_call
from rotcodec.cli import main


def test_speech_like_is_continuous_across_blocks():
    whole = speech_like(1.0, 8000)
    parts = np.concatenate([speech_like(0.25, 8000, start=i * 2000) for i in range(4)])
    voiced = np.abs(whole - parts) < 0.05  # the noise differs per block, the voice does not
    assert whole.shape == (8000,) and whole.dtype == np.float32 and voiced.mean() > 0.99
    assert 0.01 < np.sqrt(np.mean(whole ** 2)) < 0.5


def test_time_call_is_a_median_after_a_warm_up():
    calls = []
    t = time_call(lambda: calls.append(1), torch.device("cpu"), repeats=3)
    assert len(calls) == 4 and t >= 0


def test_model_and_api_figures_are_consistent(model_path):
    model = api.load_model(model_path)
    rows = bench_model(model, 0.5, [1, 2], [0.8, None], repeats=1)
    assert [(r["batch"], r["kbps"]) for r in rows] == [(1, 0.8), (1, 1.6), (2, 0.8), (2, 1.6)]
    for r in rows:
        assert r["encode_x"] == pytest.approx(r["batch"] * 0.5 / r["encode_s"])
        assert r["roundtrip_x"] < min(r["encode_x"], r["decode_x"])
    api_rows = bench_api(model, 0.5, [None], repeats=1)
    assert api_rows[0]["kbps"] == 1.6 and api_rows[0]["roundtrip_x"] > 0


def test_api_figures_with_entropy_coding_for_a_model_with_a_context_model(model_path):
    import sys
    from pathlib import Path

    from rotcodec.entropy import bundled

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from fuzz_rcq import register_context_model

    model = api.load_model(model_path)
    assert "decode_entropy_x" not in bench_api(model, 0.3, [None], repeats=1)[0]  # none registered
    register_context_model(model)
    try:
        row = bench_api(model, 0.3, [None], repeats=1)[0]
    finally:
        bundled.unregister(f"{model.config.name}{bundled.SUFFIX}")
    assert row["decode_entropy_x"] == pytest.approx(0.3 / row["decode_entropy_s"])
    assert row["roundtrip_entropy_x"] < min(row["encode_entropy_x"], row["decode_entropy_x"])
    report = {"machine": {"cpu": "x", "cpu_count": 2, "torch": "t", "torch_threads": 2}, "seconds": 0.3,
              "model_name": "tiny", "api": [row], "model": [], "encodec": "skipped", "ratio": []}
    assert "The same with entropy coding" in markdown(report)


def test_ratio_pairs_rows_by_batch_and_nearest_bitrate():
    ours = [{"precision": "fp32", "batch": 1, "kbps": k, "roundtrip_x": x} for k, x in ((1.5, 50.0), (6.0, 40.0))]
    theirs = [{"precision": "fp32", "batch": 1, "kbps": 6.0, "roundtrip_x": 10.0},
              {"precision": "fp32", "batch": 16, "kbps": 6.0, "roundtrip_x": 10.0}]
    assert _ratio(ours, theirs) == [{"precision": "fp32", "batch": 1, "rotcodec_kbps": 6.0, "ratio": 4.0}]
    assert _ratio(ours, "skipped") == []


def test_encodec_runs_with_random_weights():
    pytest.importorskip("encodec")
    rows = bench_encodec(0.25, [1], torch.device("cpu"), repeats=1)
    assert len(rows) == 1 and rows[0]["kbps"] == 6.0 and rows[0]["roundtrip_x"] > 0


def test_train_speed_of_a_recipe():
    from pathlib import Path

    r = bench_train(Path(__file__).resolve().parent.parent / "recipes" / "tiny_cpu.toml", torch.device("cpu"), 1)
    assert r["recipe"] == "tiny_cpu" and r["steps_per_s"] > 0 and r["batch"] == 8


def test_bench_cli_with_long_file_and_json(tmp_path, capsys, model_path):
    out = tmp_path / "bench.json"
    code = main(["bench", "--model", model_path, "--seconds", "0.5", "--batch", "1", "--kbps", "1.6",
                 "--repeats", "1", "--no-encodec", "--long-minutes", "0.05", "--beam", "3", "--json", str(out)])
    text, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out.read_text())
    assert report["model_name"] == "tiny" and len(report["model"]) == 1 and report["encodec"].startswith("skipped")
    assert report["beam"] == 3 and "Model tiny (encoder beam 3)." in text
    long = report["long"]
    assert long["compress"]["peak_rss_mb"] > 0 and long["decompress"]["seconds"] > 0
    nominal = 1600 * 3 / 8  # bytes of codes in 3 s at 1.6 kbps
    assert nominal <= long["rcq_bytes"] < nominal + 300  # + header, CRCs, the last partial frame
    assert "| rotcodec | fp32 | 1 | 1.6 |" in text and "peak RSS" in text
    assert markdown(report) in text
    assert main(["bench", "--model", model_path, "--json", str(out)]) == 1  # exists: no --force
    assert "exists" in capsys.readouterr().err
    assert main(["bench", "--model", model_path, "--batch", "0"]) == 1
