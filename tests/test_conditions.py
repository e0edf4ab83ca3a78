"""The conditions benchmark (``rotcodec eval --conditions``): each condition does what its name says,
deterministically, and scoring puts every coder on every condition, charging nobody for DC."""

import numpy as np
import pytest

from rotcodec.conditions import CONDITIONS, apply_condition, evaluate_conditions, markdown

SR = 16000


def _clip(seed=0, seconds=1.0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    x = 0.1 * np.sin(2 * np.pi * 1000 * t) + 0.05 * np.sin(2 * np.pi * 5000 * t) + 0.01 * rng.standard_normal(t.size)
    return x[None].astype(np.float32)


def _db(x):
    return 20 * np.log10(np.sqrt(np.mean(np.square(x - x.mean()))))


def test_each_condition_does_what_its_name_says():
    x = _clip()
    assert np.array_equal(apply_condition(x, SR, "as recorded"), x)
    assert _db(apply_condition(x, SR, "-46 dBFS")) == pytest.approx(-46, abs=0.05)
    assert _db(apply_condition(x, SR, "-36 dBFS")) == pytest.approx(-36, abs=0.05)
    assert np.abs(apply_condition(x, SR, "peak 0.9")).max() == pytest.approx(0.9, abs=1e-6)
    assert apply_condition(x, SR, "DC +0.05").mean() == pytest.approx(x.mean() + 0.05, abs=1e-6)
    noisy = apply_condition(x, SR, "noise 15 dB", seed=1)
    snr = 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum((noisy - x).astype(np.float64) ** 2))
    assert snr == pytest.approx(15, abs=0.3)
    assert np.array_equal(noisy, apply_condition(x, SR, "noise 15 dB", seed=1))
    assert not np.array_equal(noisy, apply_condition(x, SR, "noise 15 dB", seed=2))
    phone = apply_condition(x, SR, "phone band")
    spec_in, spec_out = np.abs(np.fft.rfft(x[0])), np.abs(np.fft.rfft(phone[0]))
    assert spec_out[5000] < 0.05 * spec_in[5000] and spec_out[1000] > 0.7 * spec_in[1000]  # 1 Hz bins
    with pytest.raises(ValueError, match="unknown condition"):
        apply_condition(x, SR, "underwater")


def test_every_coder_on_every_condition_and_dc_is_not_charged():
    clips = [(_clip(0), SR), (_clip(1), SR)]
    coders = {"identity": lambda w, sr: (w.copy(), 100), "halved": lambda w, sr: (0.5 * w, 50)}
    rows = evaluate_conditions(clips, coders, conditions=("as recorded", "DC +0.05"))
    assert [(r["condition"], r["codec"]) for r in rows] == [
        ("as recorded", "identity"), ("as recorded", "halved"), ("DC +0.05", "identity"), ("DC +0.05", "halved")]
    by = {(r["condition"], r["codec"]): r for r in rows}
    assert by[("as recorded", "identity")]["si_sdr"] > 80  # a perfect coder
    assert by[("DC +0.05", "identity")]["si_sdr"] > 80  # DC kept both sides is not an error
    dc_dropper = {"drops DC": lambda w, sr: (w - w.mean(axis=-1, keepdims=True), 100)}
    dropped = evaluate_conditions(clips, dc_dropper, conditions=("DC +0.05",))[0]
    assert dropped["si_sdr"] > 80  # nor is DC removed by the codec
    assert len(dropped["per_clip"]) == 2 and by[("as recorded", "identity")]["kbps_real"] == pytest.approx(0.8)
    table = markdown(rows)
    assert "| DC +0.05 |" in table and "identity" in table.splitlines()[0]


def test_the_conditions_are_the_issue_list():
    assert CONDITIONS[0] == "as recorded" and len(set(CONDITIONS)) == len(CONDITIONS) == 7


def test_cli_eval_conditions_writes_every_condition(tmp_path, model_path, capsys):
    import json

    import soundfile as sf

    from rotcodec.cli import main

    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(2):
        sf.write(folder / f"c{i}.wav", _clip(i, 0.6)[0], SR)
    out = tmp_path / "conditions.json"
    assert main(["eval", "--conditions", "--data", str(folder), "--kbps", "1.5", "--opus", "",
                 "--model", model_path, "--json", str(out), "-q"]) == 0
    rows = json.loads(out.read_text())
    assert [r["condition"] for r in rows] == list(CONDITIONS)
    assert all(len(r["per_clip"]) == 2 and r["codec"].startswith("rotcodec") for r in rows)
    assert "| phone band |" in capsys.readouterr().out


def test_conditions_table_rows_replace_their_weights_and_folder_only():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from conditions_table import merge, table_rows, to_csv

    rows = [{"condition": c, "codec": "x", "pesq": p, "clips": 2, "kbps_real": 3.0}
            for c, p in (("as recorded", 2.5), ("-46 dBFS", 2.4))]
    new = table_rows(rows, "r12", "unseen16k")
    assert [r["vs_as_recorded"] for r in new] == ["+0.000", "-0.100"]
    old = table_rows(rows, "r11", "unseen16k") + table_rows(rows, "r12", "unseen16k")
    merged = merge(old, table_rows([{**r, "pesq": 3.0} for r in rows], "r12", "unseen16k"))
    assert [(r["weights"], r["pesq"]) for r in merged] == [("r11", "2.500"), ("r11", "2.400"), ("r12", "3.000"),
                                                           ("r12", "3.000")]
    assert to_csv(merged).splitlines()[0].startswith("weights,folder,clips,condition")
