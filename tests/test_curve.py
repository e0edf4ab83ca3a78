"""benchmarks/curve.py: the curve of all rounds from the runs' logs."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _valid(step, pesq):
    return {"step": step, "split": "valid", "mel": 0.3 - step / 1e5, "pesq": pesq, "si_sdr": 5.0, "mel_half": 0.35}


def _write(run: Path, rows):
    run.mkdir()
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_curve_gives_copied_rows_once_and_marks_the_cooled_branch(tmp_path):
    base = [_valid(1000, 1.5), {"step": 1500, "split": "train", "mel": 0.2}, _valid(2000, 1.8)]
    # round a cooled from step 2000 on; round b continued from a's stable checkpoint (step 2000)
    _write(tmp_path / "a", base + [{"step": 2000, "split": "cooldown", "minutes": 5.0}, _valid(3000, 2.2), _valid(3500, 2.3)])
    _write(tmp_path / "b", base + [_valid(3000, 2.0), _valid(4000, 2.1)])
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "curve.py"), str(tmp_path / "a"), str(tmp_path / "b"),
                           "--every", "1000", "--batch-seconds", "3600"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    body = [line.split(" | ")[:4] for line in proc.stdout.splitlines()[2:]]
    assert body == [
        ["| 1,000", "1000.0", "0.290", "1.50"],
        ["| 2,000", "2000.0", "0.280", "1.80"],
        ["| 3,000 (a cool-down)", "3000.0", "0.270", "2.20"],
        ["| 3,000", "3000.0", "0.270", "2.00"],
        ["| 3,500 (a cool-down)", "3500.0", "0.265", "2.30"],  # a run's last row, off the grid
        ["| 4,000", "4000.0", "0.260", "2.10"],
    ]


def test_curve_counts_a_fresh_machines_round_from_the_steps_given_after_at_on_its_own_grid(tmp_path):
    # round c began with --init from a model with 4,500 steps; its own log counts from 0, the grid too
    _write(tmp_path / "c", [_valid(1000, 2.4), {"step": 1500, "split": "cooldown", "minutes": 5.0}, _valid(2000, 2.5)])
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "curve.py"), f"{tmp_path / 'c'}@4500",
                           "--every", "1000", "--batch-seconds", "3600"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    body = [line.split(" | ")[:4] for line in proc.stdout.splitlines()[2:]]
    assert body == [["| 5,500", "5500.0", "0.290", "2.40"], ["| 6,500 (c cool-down)", "6500.0", "0.280", "2.50"]]
