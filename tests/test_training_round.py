"""benchmarks/training_round.py: the pure pieces of a round (the shipping rule, the learning rate a
fresh machine's round restarts at, when saved scores
and copies are still the model's, the hours of audio a round's weights have seen)."""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from training_round import (  # noqa: E402
    default_valid, folder_key, history_point, hours_at, improved, lr_before_cooldown, written_after,
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


def _folder(pesq_by_kbps: dict[float, list[float]]) -> list[dict]:
    return [{"kbps_nominal": k, "pesq": sum(v) / len(v), "per_clip": [{"pesq": x} for x in v]}
            for k, v in pesq_by_kbps.items()]


def _scores(shift_unseen: dict[float, float], shift_valid: float = 0.0, spread: float = 0.0) -> dict[str, list[dict]]:
    base = [1.5, 2.0, 2.5, 1.8, 2.2, 2.9, 2.1, 1.7]
    jitter = [0.01, -0.01, 0.02, -0.02, 0.0, 0.01, -0.01, 0.0]  # times spread: the clips' own noise

    def folder(shift):
        return _folder({k: [b + shift.get(k, 0.0) + spread * j for b, j in zip(base, jitter)]
                        for k in (1.5, 3.0, 6.0)})
    return {"speech16k/valid": folder({1.5: shift_valid, 3.0: shift_valid, 6.0: shift_valid}),
            "unseen16k": folder(shift_unseen), "unseenx16k": folder(shift_unseen)}


def test_shipping_rule_needs_unseen_3_and_6_kbps_up_beyond_paired_noise():
    old = _scores({})
    assert improved(_scores({3.0: 0.05, 6.0: 0.05}, spread=1.0), old)[0]
    assert not improved(_scores({3.0: 0.05}, spread=1.0), old)[0]  # 6 kbps level: not shipped
    assert not improved(_scores({3.0: 0.002, 6.0: 0.002}, spread=1.0), old)[0]  # within the noise
    assert improved(_scores({1.0: 0.0}), None)[0]


def test_shipping_rule_refuses_a_valid_folder_that_fell_beyond_noise():
    old = _scores({})
    ok, why = improved(_scores({3.0: 0.05, 6.0: 0.05}, shift_valid=-0.05, spread=1.0), old)
    assert not ok and "speech16k/valid" in why


def test_shipping_rule_needs_an_unseen_folder():
    new = {"speech16k/valid": _scores({})["speech16k/valid"]}
    assert not improved(new, new)[0]


def test_default_folders_put_the_unseen_ones_last_and_name_them():
    keys = [folder_key(f) for f in default_valid()]
    assert keys[0] == "speech16k/valid" and keys[-2:] == ["unseen16k", "unseenx16k"]


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
