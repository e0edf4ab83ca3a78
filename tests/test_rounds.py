"""benchmarks/rounds.py and training_round.py's log writer: the training log, docs/training_log.csv."""

import csv
import io
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from rounds import main, parse_training_log  # noqa: E402
from training_round import LOG, LOG_COLUMNS, add_to_log, log_row  # noqa: E402


def _row(number, pesq6, shipped, hours=10.0):
    scores = [{"kbps_nominal": k, "pesq": p, "stoi": 0.9, "si_sdr": s}
              for k, p, s in ((1.5, 1.5, 3.0), (3.0, 2.0, 5.0), (6.0, pesq6, -0.5))]
    return log_row({"round": number, "hardware": "2 CPU cores", "steps": 12345, "batch": 8, "segment": 1.0,
                    "hours_seen_total": hours, "wall_minutes": 120, "scores": scores, "shipped": shipped})


def _log(*rows):
    text = ""
    for r in rows:
        text = add_to_log(text, r)
    return text


def test_rows_written_by_training_round_read_back():
    rounds = parse_training_log(_log(_row(1, 2.5, True, 3.4), _row(2, 2.61, False, 7.25)))
    assert [r.number for r in rounds] == [1, 2]
    assert rounds[0].steps == 12345 and rounds[0].hours == 3.4 and rounds[0].shipped
    assert rounds[1].pesq == (1.5, 2.0, 2.61) and rounds[1].si_sdr == (3.0, 5.0, -0.5) and not rounds[1].shipped


def test_a_rounds_row_replaces_its_partial_row_and_a_new_round_goes_last():
    text = _log(_row(1, 2.5, True), _row(2, 2.6, False))
    text = add_to_log(text, _row(2, 2.7, True))  # round 2 finished: its row replaces the partial one
    text = add_to_log(text, _row(3, 2.8, False))
    assert [r["round"] for r in csv.DictReader(io.StringIO(text))] == ["1", "2", "3"]
    assert [(r.number, r.pesq[2], r.shipped) for r in parse_training_log(text)] == [(1, 2.5, True), (2, 2.7, True), (3, 2.8, False)]
    assert text.splitlines()[0] == ",".join(LOG_COLUMNS)


def test_a_round_written_twice_keeps_its_last_row_when_read():
    header = ",".join(LOG_COLUMNS) + "\n"
    lines = [",".join(_row(n, p, s).values()) for n, p, s in ((1, 2.5, True), (2, 2.6, False), (2, 2.7, True))]
    rounds = parse_training_log(header + "\n".join(lines) + "\n")
    assert [(r.number, r.pesq[2], r.shipped) for r in rounds] == [(1, 2.5, True), (2, 2.7, True)]


def test_a_row_with_other_columns_is_refused():
    with pytest.raises(ValueError, match="columns"):
        add_to_log("round,steps\n1,10\n", _row(2, 2.6, False))


def test_malformed_logs_are_refused():
    with pytest.raises(ValueError, match="lacks the columns"):
        parse_training_log("round,steps\n1,10\n")
    with pytest.raises(ValueError, match="no rows"):
        parse_training_log(",".join(LOG_COLUMNS) + "\n")
    bad = dict(_row(1, 2.5, True), pesq_6="2.7 / 0.9")
    with pytest.raises(ValueError, match="line 2"):
        parse_training_log(",".join(LOG_COLUMNS) + "\n" + ",".join(bad.values()) + "\n")


def test_the_projects_training_log_parses_in_order_with_growing_hours():
    rounds = parse_training_log(LOG.read_text(encoding="utf-8"))
    assert [r.number for r in rounds] == list(range(1, len(rounds) + 1))
    assert all(a.hours < b.hours for a, b in zip(rounds, rounds[1:]))
    assert rounds[0].shipped
    assert all(1.0 <= p <= 4.6 for r in rounds for p in r.pesq)


def test_plot_with_opus_lines(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    log = tmp_path / "training_log.csv"
    log.write_text(_log(_row(1, 2.5, True, 3.4), _row(2, 2.61, False, 7.25)))
    opus = tmp_path / "opus.json"
    opus.write_text(json.dumps([{"kbps_nominal": 6.0, "pesq": 2.03, "si_sdr": 7.1},
                                {"kbps_nominal": 8.0, "pesq": 2.73, "si_sdr": 10.2}]))
    png = tmp_path / "figs" / "rounds.png"
    assert main(["--log", str(log), "--opus", str(opus), "--plot", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "| 2 | 7.2 | 1.50 / 2.00 / 2.61 |" in capsys.readouterr().out


# ----- the general-audio model's rounds (benchmarks/audio_round.py) --------------------------------
def _mel_scores(mels_by_kbps):
    """eval-JSON-like scores of one folder: per clip mel distances for each kbps."""
    return [{"kbps_nominal": k, "mel": sum(m) / len(m), "per_clip": [{"mel": x} for x in m]}
            for k, m in mels_by_kbps.items()]


def test_audio_rule_ships_on_lower_mel_and_guards_the_valid_songs():
    from audio_round import improved

    clips = [1.0, 1.2, 0.9, 1.1, 1.3, 0.8]
    old = {f: _mel_scores({6.0: clips}) for f in ("unseensongs24k", "effects24k/valid", "songs24k/valid")}
    better = [m - 0.1 + 0.01 * (i % 2) for i, m in enumerate(clips)]
    new = {f: _mel_scores({6.0: better}) for f in old}
    ok, why = improved(new, old, [(6.0, 6.0)])
    assert ok and "music+effects 6 vs 6 kbps mel -0.095" in why
    worse_songs = dict(new, **{"songs24k/valid": _mel_scores({6.0: [m + 0.2 for m in clips]})})
    ok, why = improved(worse_songs, old, [(6.0, 6.0)])
    assert not ok and "songs24k/valid 6 kbps mel rose" in why
    assert improved(worse_songs, old, [(6.0, 6.0)], keep=False)[0]  # the first round: no songs guard
    noisy = {f: _mel_scores({6.0: [m + (0.3 if i % 2 else -0.3) for i, m in enumerate(clips)]}) for f in old}
    assert not improved(noisy, old, [(6.0, 6.0)])[0]  # a change within the noise does not ship
