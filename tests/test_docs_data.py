"""The measurements under docs/ are well-formed data: every CSV row has its header's fields."""

import csv
import json
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_csv_has_a_header_and_full_rows():
    files = sorted(DOCS.glob("*.csv"))
    assert files
    for f in files:
        rows = list(csv.reader(f.read_text(encoding="utf-8").splitlines()))
        assert len(rows) > 1, f
        assert all(len(r) == len(rows[0]) for r in rows), f


def test_opus_reference_covers_the_unseen_folders():
    rows = list(csv.DictReader((DOCS / "opus.csv").read_text(encoding="utf-8").splitlines()))
    got = {(r["folder"], float(r["kbps"])) for r in rows}
    assert {(f, k) for f in ("unseen16k", "unseenx16k") for k in (6.0, 8.0, 12.0)} <= got
    assert all(1.0 <= float(r["pesq"]) <= 4.7 and int(r["clips"]) > 0 for r in rows)


def test_speed_figures_load():
    speed = json.loads((DOCS / "speed.json").read_text(encoding="utf-8"))
    assert speed["bench_beam"]["rows"] and speed["bench_greedy"]["training"]


def test_level_sweep_rows_are_paired_against_coding_as_it_comes():
    sweep = json.loads((DOCS / "level_sweep.json").read_text(encoding="utf-8"))
    rows = sweep["rows"]
    assert {r["kbps"] for r in rows} == {3.0, 6.0}
    assert all(r["level"] is None or len(r["vs_unconditioned"]) == 2 for r in rows)
    assert sum(r["level"] is None for r in rows) == 2  # one unconditioned row per bitrate


def test_conditions_table_has_every_condition_for_each_weights_and_folder():
    rows = list(csv.DictReader((DOCS / "conditions.csv").read_text(encoding="utf-8").splitlines()))
    groups = {}
    for r in rows:
        groups.setdefault((r["weights"], r["folder"], r["codec"]), set()).add(r["condition"])
    assert groups and all(len(conds) == 7 and "as recorded" in conds for conds in groups.values())
