"""benchmarks/rounds.py: the curve of all rounds read back from the model card's Training log."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from rounds import main, parse_training_log  # noqa: E402
from training_round import card_row  # noqa: E402

HEAD = """# card

## Training log

Some prose | with a bar.

| round | hardware | steps | batch | hours seen | wall time | 1.5 kbps | 3 kbps | 6 kbps | shipped |
|---|---|---|---|---|---|---|---|---|---|
"""


def _row(number, pesq6, shipped, hours=10.0):
    scores = [{"kbps_nominal": k, "pesq": p, "stoi": 0.9, "si_sdr": s}
              for k, p, s in ((1.5, 1.5, 3.0), (3.0, 2.0, 5.0), (6.0, pesq6, -0.5))]
    return card_row({"round": number, "hardware": "2 CPU cores", "steps": 12345, "batch": 8, "segment": 1.0,
                     "hours_seen_total": hours, "wall_minutes": 120, "scores": scores, "shipped": shipped})


def test_rows_written_by_training_round_read_back():
    text = HEAD + _row(1, 2.5, True, 3.4) + "\n" + _row(2, 2.61, False, 7.25) + "\n<!-- training-log-end -->\n\n## Next\n| 9 | x |\n"
    rounds = parse_training_log(text)
    assert [r.number for r in rounds] == [1, 2]
    assert rounds[0].steps == 12345 and rounds[0].hours == 3.4 and rounds[0].shipped
    assert rounds[1].pesq == (1.5, 2.0, 2.61) and rounds[1].si_sdr == (3.0, 5.0, -0.5) and not rounds[1].shipped


def test_a_round_written_twice_keeps_its_last_row():
    rounds = parse_training_log(HEAD + _row(1, 2.5, True) + "\n" + _row(2, 2.6, False) + "\n" + _row(2, 2.7, True) + "\n")
    assert [(r.number, r.pesq[2], r.shipped) for r in rounds] == [(1, 2.5, True), (2, 2.7, True)]


def test_malformed_logs_are_refused():
    with pytest.raises(ValueError, match="Training log"):
        parse_training_log("# card\n")
    with pytest.raises(ValueError, match="no rows"):
        parse_training_log(HEAD)
    with pytest.raises(ValueError, match="PESQ / STOI / SI-SDR"):
        parse_training_log(HEAD + "| 1 | cpu | 10 | 8 x 1 s | 1.0 | 5 min | 1.2 | 1.3 / 0.8 / 2 | 1.4 / 0.8 / 3 | yes |\n")


def test_the_bundled_card_parses_in_order_with_growing_hours():
    rounds = parse_training_log((ROOT / "rotcodec" / "pretrained" / "MODEL_CARD.md").read_text(encoding="utf-8"))
    assert [r.number for r in rounds] == list(range(1, len(rounds) + 1))
    assert all(a.hours < b.hours for a, b in zip(rounds, rounds[1:]))
    assert rounds[0].shipped


def test_plot_with_opus_lines(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    card = tmp_path / "card.md"
    card.write_text(HEAD + _row(1, 2.5, True, 3.4) + "\n" + _row(2, 2.61, False, 7.25) + "\n")
    opus = tmp_path / "opus.json"
    opus.write_text(json.dumps([{"kbps_nominal": 6.0, "pesq": 2.03, "si_sdr": 7.1},
                                {"kbps_nominal": 8.0, "pesq": 2.73, "si_sdr": 10.2}]))
    png = tmp_path / "figs" / "rounds.png"
    assert main(["--card", str(card), "--opus", str(opus), "--plot", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "| 2 | 7.2 | 1.50 / 2.00 / 2.61 |" in capsys.readouterr().out


def test_a_rounds_row_replaces_its_partial_row_and_a_new_round_goes_last(tmp_path):
    from training_round import add_to_card

    card = tmp_path / "MODEL_CARD.md"
    other = "| 2 | other table, before the log |\n\n"
    card.write_text("# card\n\n" + other + HEAD + _row(1, 2.5, True) + "\n" + _row(2, 2.6, False) + "\n"
                    "<!-- training-log-end -->\n\n| 2 | a curve row after the log |\n")
    add_to_card(card, _row(2, 2.7, True))  # round 2 finished: its row replaces the partial one
    add_to_card(card, _row(3, 2.8, False))
    text = card.read_text()
    assert [(r.number, r.pesq[2], r.shipped) for r in parse_training_log(text)] == [(1, 2.5, True), (2, 2.7, True), (3, 2.8, False)]
    assert text.count("| 2 | 2 CPU cores |") == 1
    assert other in text and "| 2 | a curve row after the log |" in text  # other tables untouched
    assert text.index(_row(3, 2.8, False)) < text.index("<!-- training-log-end -->")
