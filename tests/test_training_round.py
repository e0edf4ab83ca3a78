"""benchmarks/training_round.py: the pure pieces of a round (the shipping rule, the learning rate a
fresh machine's round restarts at, the beam the shipped scores were measured with, when saved scores
and copies are still the model's, the hours of audio a round's weights have seen)."""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from training_round import (  # noqa: E402
    history_point, hours_at, improved, lr_before_cooldown, shipped_beam, written_after,
)


def _train(step, lr):
    return {"step": step, "split": "train", "mel": 0.2, "lr": lr}


def test_lr_before_cooldown_is_the_last_rate_before_the_cool_down_began():
    rows = [_train(50, 1e-3), {"step": 100, "split": "valid", "mel": 0.2}, _train(100, 9e-4),
            {"step": 100, "split": "cooldown", "minutes": 5.0}, _train(150, 4e-4), _train(200, 1e-5)]
    assert lr_before_cooldown(rows) == 9e-4


def test_lr_before_cooldown_without_a_cool_down_is_the_last_rate_and_none_without_rates():
    assert lr_before_cooldown([_train(50, 1e-3), _train(100, 8e-4)]) == 8e-4
    assert lr_before_cooldown([{"step": 100, "split": "valid", "mel": 0.2}]) is None


def _scores(a, b, c):
    return [{"kbps_nominal": k, "pesq": p} for k, p in zip((1.5, 3.0, 6.0), (a, b, c))]


def test_shipping_rule_needs_3_and_6_kbps_up_and_1_5_not_down():
    old = _scores(1.6, 1.9, 2.4)
    assert improved(_scores(1.6, 2.0, 2.5), old)[0]
    assert not improved(_scores(1.59, 2.0, 2.5), old)[0]
    assert not improved(_scores(1.7, 1.9, 2.5), old)[0]
    assert not improved(_scores(1.7, 2.0, 2.4), old)[0]
    assert improved(_scores(1.0, 1.0, 1.0), None)[0]


def test_shipped_scores_without_a_beam_were_measured_greedily():
    assert shipped_beam(None) == 1
    assert shipped_beam({"scores": {}}) == 1
    assert shipped_beam({"scores": {}, "beam": 4}) == 4


def test_saved_scores_and_copies_count_only_when_written_after_the_model(tmp_path):
    model, scores = tmp_path / "model_half.pt", tmp_path / "eval_speech16k_valid.json"
    model.write_bytes(b"weights")
    assert not written_after(scores, model)  # never scored
    scores.write_text("[]")
    os.utime(model, (1_000, 1_000))
    os.utime(scores, (2_000, 2_000))
    assert written_after(scores, model)
    os.utime(model, (3_000, 3_000))  # a resumed round wrote new weights: the old scores are stale
    assert not written_after(scores, model)


def test_hours_seen_count_forward_and_back_from_a_known_point_of_the_run():
    point = {"step": 1000, "hours_seen_total": 10.0}
    per_step = 8 / 3600
    assert hours_at(1000, per_step, point) == 10.0
    assert abs(hours_at(1900, per_step, point) - 12.0) < 1e-9  # continued past it (an unshipped round)
    assert abs(hours_at(100, per_step, point) - 8.0) < 1e-9  # back before it (before a cool-down)
    assert hours_at(500, per_step, None) == 0.0


def test_history_point_prefers_the_runs_own_record_then_its_last_decision(tmp_path):
    assert history_point(tmp_path) is None
    (tmp_path / "log.jsonl").write_text(json.dumps(_train(300, 1e-4)) + "\n" + json.dumps(_train(400, 1e-4)) + "\n")
    (tmp_path / "round.json").write_text(json.dumps({"hours_seen_total": 50.0}))  # an older round's decision
    assert history_point(tmp_path) == {"step": 400, "hours_seen_total": 50.0}
    (tmp_path / "round.json").write_text(json.dumps({"hours_seen_total": 50.0, "last_step": 350}))
    assert history_point(tmp_path) == {"step": 350, "hours_seen_total": 50.0}
    (tmp_path / "history.json").write_text(json.dumps({"step": 0, "hours_seen_total": 20.0}))
    assert history_point(tmp_path) == {"step": 0, "hours_seen_total": 20.0}
