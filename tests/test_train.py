"""Training: recipes, data, losses, discriminators, steps, exact resume, and DDP with gloo."""

import io
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.multiprocessing as mp

import rotcodec
from rotcodec import Codec
from rotcodec.model.loading import load_model_file, weights_hash
from rotcodec.train import load_recipe, train
from rotcodec.train.config import Recipe, parse_set
from rotcodec.train.data import SegmentDataset, StepSampler, normalize_loudness, scan_audio, split_files
from rotcodec.train.discriminators import Discriminators
from rotcodec.train.loop import trim_log
from rotcodec.train.progress import (PIPE_SECONDS, TERMINAL_SECONDS, ProgressPrinter, clock, progress_line,
                                      remaining_seconds)
from rotcodec.train.losses import (MultiScaleMelLoss, feature_matching_loss, generator_adv_loss, negative_si_sdr,
                                   waveform_l1)

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
FAST = ["train.steps=4", "train.log_every=1", "train.valid_every=1000", "train.checkpoint_every=2",
        "data.num_workers=0", "data.batch_size=2", "data.segment_seconds=0.25", "data.valid_percent=0",
        "train.examples=0"]


def make_audio(folder: Path, n: int = 6, seconds: float = 1.5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        sr = (16000, 22050, 8000)[i % 3]
        t = np.arange(int(sr * seconds)) / sr
        f0 = 110 + 200 * rng.random()
        x = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 4)) + 0.01 * rng.standard_normal(t.size)
        channels = np.stack([x, 0.5 * x], 1) if i == 1 else x
        sf.write(folder / f"clip{i}.wav", channels.astype(np.float32), sr)
    return folder


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    return make_audio(tmp_path_factory.mktemp("audio"))


# ----- recipes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tiny_cpu", "speech16k", "audio24k"])
def test_recipes_load(name):
    recipe = load_recipe(RECIPES / f"{name}.toml")
    assert recipe.model.name == {"tiny_cpu": "tiny"}.get(name, name)


def test_set_overrides_and_unknown_keys():
    recipe = load_recipe(RECIPES / "tiny_cpu.toml", ["train.steps=7", "model.quantizer.estimator=ste", "optim.lr=1e-4"])
    assert recipe.train.steps == 7 and recipe.model.quantizer.estimator == "ste" and recipe.optim.lr == 1e-4
    for bad in ("train.stepz=3", "nosection.x=1", "model.quantizer.nope=1"):
        with pytest.raises(ValueError, match="unknown"):
            load_recipe(RECIPES / "tiny_cpu.toml", [bad])
    with pytest.raises(ValueError):
        load_recipe(RECIPES / "tiny_cpu.toml", ["train.steps=abc"])
    with pytest.raises(ValueError):
        parse_set({}, "no_equals_sign")


def test_kbps_sets_the_number_of_stages():
    recipe = load_recipe(RECIPES / "speech16k.toml")
    assert recipe.with_kbps(6).model.quantizer.n_q == 12
    assert recipe.with_kbps(3).model.quantizer.n_q == 6
    assert recipe.with_kbps(1.2).model.quantizer.n_q == 2
    with pytest.raises(ValueError, match="below one stage"):
        recipe.with_kbps(0.4)


def test_recipe_dict_round_trip():
    recipe = load_recipe(RECIPES / "speech16k.toml")
    assert Recipe.from_dict(recipe.to_dict()) == recipe


# ----- data ------------------------------------------------------------------------------------
def test_scan_split_and_segments(audio_dir, tmp_path):
    (audio_dir / "broken.wav").write_bytes(b"RIFF not really")
    try:
        files = scan_audio([audio_dir])
    finally:
        (audio_dir / "broken.wav").unlink()
    assert len(files) == 6
    train_files, valid_files = split_files(files, 50.0)
    assert {f.key for f in train_files}.isdisjoint({f.key for f in valid_files})
    assert split_files(files, 50.0) == (train_files, valid_files)  # deterministic
    ds = SegmentDataset(files, 16000, 0.5, (-20.0, -20.0), seed=3)
    a, b = ds[5], ds[5]
    assert a.shape == (1, 8000) and torch.equal(a, b) and not torch.equal(a, ds[6])
    assert a.pow(2).mean().sqrt().item() == pytest.approx(10 ** (-20 / 20), rel=0.05)
    with pytest.raises(FileNotFoundError):
        scan_audio([tmp_path / "missing"])


def test_step_sampler_resumes_and_splits_ranks():
    full = StepSampler(2, 0)
    it = iter(full)
    first = [next(it) for _ in range(6)]
    it = iter(StepSampler(2, 1))
    assert [next(it) for _ in range(4)] == first[2:]
    r0, r1 = iter(StepSampler(2, 0, 0, 2)), iter(StepSampler(2, 0, 1, 2))
    assert set(next(r0) for _ in range(4)).isdisjoint(next(r1) for _ in range(4))


def test_normalize_loudness_caps_peaks():
    x = torch.zeros(1, 1000)
    x[0, 0] = 1.0
    y = normalize_loudness(x, -10.0)
    assert y.abs().max() <= 0.99 + 1e-6


# ----- losses and discriminators ---------------------------------------------------------------
def test_losses_zero_for_identical_positive_otherwise():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 4000) * 0.1
    y = x + 0.05 * torch.randn_like(x)
    mel = MultiScaleMelLoss(16000)
    assert mel(x, x).item() == 0.0 and mel(y, x).item() > 0
    assert waveform_l1(x, x).item() == 0.0 and waveform_l1(y, x).item() > 0
    disc = Discriminators(16000, width=4)
    _, fx = disc(x)
    _, fy = disc(y)
    assert feature_matching_loss(fx, fx).item() == 0.0 and feature_matching_loss(fx, fy).item() > 0
    assert generator_adv_loss([torch.ones(2, 5)]).item() == 0.0
    assert generator_adv_loss([torch.zeros(2, 5)]).item() > 0


def test_negative_si_sdr_rewards_the_waveform_not_just_the_spectrum():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(2, 1, 4000, generator=g)
    assert negative_si_sdr(ref, ref) < -60  # identical: SI-SDR very high
    assert negative_si_sdr(0.3 * ref, ref) < -60  # scale-invariant
    noisy = ref + 0.1 * torch.randn(2, 1, 4000, generator=g)
    assert -22 < negative_si_sdr(noisy, ref) < -18  # 20 dB SNR
    # same magnitude spectrum, shuffled phase: the mel loss cannot tell, SI-SDR can
    spec = torch.fft.rfft(ref)
    phase = torch.exp(1j * 2 * math.pi * torch.rand(spec.shape, generator=g))
    scrambled = torch.fft.irfft(spec.abs() * phase, n=4000)
    assert negative_si_sdr(scrambled, ref) > 10
    est = scrambled.clone().requires_grad_(True)
    negative_si_sdr(est, ref).backward()
    assert torch.isfinite(est.grad).all()


def test_discriminator_output_shapes():
    disc = Discriminators(16000, width=4)
    logits, feats = disc(torch.randn(3, 1, 4000))
    assert len(logits) == len(feats) == 8  # 5 periods + 3 STFT resolutions
    for lg, ft in zip(logits, feats):
        assert lg.dim() == 2 and lg.shape[0] == 3 and lg.shape[1] > 0
        assert all(f.shape[0] == 3 for f in ft)


# ----- runs --------------------------------------------------------------------------------------
def read_log(run: Path, split: str = "train") -> list[dict]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == split]


def test_tiny_run_writes_model_checkpoint_and_validation(audio_dir, tmp_path):
    recipe = load_recipe(RECIPES / "tiny_cpu.toml", FAST + ["train.steps=3", "loss.adversarial=true",
                                                            "loss.disc_width=4", "data.valid_percent=30",
                                                            "train.examples=1", "data.valid_seconds=1.0"])
    run = tmp_path / "run"
    result = train(recipe, [str(audio_dir)], run, progress=False)
    assert result.state.step == 3
    model = load_model_file(run / "model.pt")
    assert model.config == recipe.model
    valid = read_log(run, "valid")
    assert valid and {"mel", "si_sdr", "usage/0", "perplexity/0", "lambda/0"} <= set(valid[-1])
    assert {"adv", "feat", "disc", "mel", "vq/commit"} <= set(read_log(run)[-1])
    assert (run / "samples" / "step_3" / "0_dec.wav").exists()
    with pytest.raises(FileExistsError):  # never silently restart over an existing run
        train(recipe, [str(audio_dir)], run, progress=False)


def test_resume_gives_the_same_next_losses(audio_dir, tmp_path):
    sets = FAST + ["loss.adversarial=true", "loss.disc_width=4"]
    full = tmp_path / "full"
    train(load_recipe(RECIPES / "tiny_cpu.toml", sets), [str(audio_dir)], full, progress=False)
    part = tmp_path / "part"
    train(load_recipe(RECIPES / "tiny_cpu.toml", sets + ["train.steps=2"]), [str(audio_dir)], part, progress=False)
    with open(part / "log.jsonl", "a") as f:  # a run killed past its checkpoint: a logged step 3, a torn row
        f.write(json.dumps({"step": 3, "split": "train", "total": -1.0}) + "\n" + '{"step": 4, "spl')
    train(load_recipe(RECIPES / "tiny_cpu.toml", sets), [str(audio_dir)], part, resume=True, progress=False)
    steps = [r["step"] for r in read_log(part)]
    assert steps == sorted(set(steps)) == [1, 2, 3, 4]  # each step logged once: the killed run's rows went
    a = {r["step"]: r for r in read_log(full)}
    b = {r["step"]: r for r in read_log(part)}
    for step in (3, 4):
        for key in ("total", "mel", "adv", "disc", "vq/commit"):
            assert b[step][key] == pytest.approx(a[step][key], rel=1e-5, abs=1e-7), (step, key)


def test_trim_log_drops_rows_past_the_step_and_torn_lines_only(tmp_path):
    log = tmp_path / "log.jsonl"
    assert trim_log(log, 5) == 0 and not log.exists()
    rows = [{"step": 4, "split": "train"}, {"step": 5, "split": "valid"}, {"step": 5, "split": "cooldown"}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert trim_log(log, 5) == 0
    log.write_text(log.read_text() + json.dumps({"step": 6, "split": "train"}) + "\n\n[1, 2]\n" + '{"step": 7')
    assert trim_log(log, 5) == 3
    assert [json.loads(line) for line in log.read_text().splitlines()] == rows


def test_time_limit_stops_with_a_validation_and_a_model(audio_dir, tmp_path):
    sets = FAST + ["train.steps=1000", "train.max_minutes=0.0001", 'train.clock="cpu"', "data.valid_percent=30",
                   "data.valid_seconds=1.0"]
    result = train(load_recipe(RECIPES / "tiny_cpu.toml", sets), [str(audio_dir)], tmp_path / "run", progress=False)
    assert result.state.step < 1000
    assert read_log(tmp_path / "run", "valid")[-1]["step"] == result.state.step
    assert load_model_file(tmp_path / "run" / "model.pt").config.name == "tiny"
    with pytest.raises(ValueError, match="clock"):
        train(load_recipe(RECIPES / "tiny_cpu.toml", sets + ['train.clock="moon"']), [str(audio_dir)],
              tmp_path / "bad", progress=False)


def test_cooldown_factor():
    from rotcodec.train.steps import cooldown_factor

    assert cooldown_factor(600.0, 0.0) == 1.0  # no cool-down
    assert cooldown_factor(600.0, 300.0) == 1.0  # before it
    assert cooldown_factor(150.0, 300.0) == pytest.approx(0.5)  # halfway through it
    assert cooldown_factor(0.0, 300.0) == 0.0 and cooldown_factor(-5.0, 300.0) == 0.0  # at and past the deadline
    assert cooldown_factor(math.inf, 300.0) == 1.0  # no time limit


def test_lr_scale_scales_one_step_only():
    from rotcodec.train.steps import autocast_for, build_parts, generator_step, lr_factor

    recipe = load_recipe(RECIPES / "tiny_cpu.toml", FAST)
    parts = build_parts(recipe, torch.device("cpu"))
    real = 0.1 * torch.randn(2, 1, 4000)
    amp = autocast_for(recipe, torch.device("cpu"))
    generator_step(parts, recipe, real, 0, amp)  # k-means init and a first update
    before = torch.nn.utils.parameters_to_vector(parts.codec.parameters()).clone()
    logs, _ = generator_step(parts, recipe, real, 1, amp, lr_scale=0.0)
    assert logs["lr"] == 0.0
    assert torch.equal(torch.nn.utils.parameters_to_vector(parts.codec.parameters()), before)
    # the schedule goes on from its own value, not from the scaled one
    assert parts.opt_g.param_groups[0]["lr"] == pytest.approx(recipe.optim.lr * lr_factor(recipe)(2))
    logs, _ = generator_step(parts, recipe, real, 2, amp, lr_scale=0.5)
    assert logs["lr"] == pytest.approx(0.5 * recipe.optim.lr * lr_factor(recipe)(2))
    assert not torch.equal(torch.nn.utils.parameters_to_vector(parts.codec.parameters()), before)


def test_cooldown_lowers_the_rate_and_keeps_the_stable_run(audio_dir, tmp_path, monkeypatch):
    import time

    from rotcodec.train.steps import lr_factor

    # The CPU clock is a counter (one second per reading) so that the test does not depend on how
    # busy the machine is: a few readings per step, so 6 s are a handful of steps, however slow they are.
    ticks = iter(range(10**6))
    monkeypatch.setattr(time, "process_time", lambda: float(next(ticks)))
    sets = FAST + ["train.steps=1000", "train.max_minutes=0.1", "train.cooldown_minutes=0.1", 'train.clock="cpu"']
    recipe = load_recipe(RECIPES / "tiny_cpu.toml", sets)
    result = train(recipe, [str(audio_dir)], tmp_path / "run", progress=False)
    assert [r["step"] for r in read_log(tmp_path / "run", "cooldown")] == [0]  # the whole budget cools down
    assert (tmp_path / "run" / "checkpoint_stable.pt").exists()
    assert load_model_file(tmp_path / "run" / "model_stable.pt").config.name == "tiny"
    lrs = [(r["step"], r["lr"]) for r in read_log(tmp_path / "run")]
    assert len(lrs) == result.state.step >= 4
    for step, lr in lrs:  # every step ran below its scheduled rate, later steps further below
        assert lr < recipe.optim.lr * lr_factor(recipe)(step - 1)
    ratios = [lr / (recipe.optim.lr * lr_factor(recipe)(step - 1)) for step, lr in lrs]
    assert ratios == sorted(ratios, reverse=True)
    with pytest.raises(ValueError, match="cooldown"):
        train(load_recipe(RECIPES / "tiny_cpu.toml", FAST + ["train.cooldown_minutes=5"]), [str(audio_dir)],
              tmp_path / "bad", progress=False)


def test_init_from_a_model_file_or_name_through_the_cli(audio_dir, tmp_path, model_path, capsys):
    from rotcodec.cli import main

    out = tmp_path / "run"
    args = ["train", str(RECIPES / "tiny_cpu.toml"), "--data", str(audio_dir), "--out", str(out), "--quiet",
            "--init", model_path] + [x for s in FAST + ["train.steps=1"] for x in ("--set", s)]
    assert main(args) == 0
    start = load_model_file(model_path)
    after = load_model_file(out / "model.pt")
    # one step from the given weights: close to them, far closer than a fresh model is
    fresh = torch.nn.utils.parameters_to_vector(Codec(start.config).parameters())
    a, b = (torch.nn.utils.parameters_to_vector(m.parameters()) for m in (start, after))
    assert (a - b).norm() < 0.2 * (a - fresh).norm()
    assert after.config.name == "run"  # named after its run, not after the recipe's model
    # a model whose config differs from the recipe's is refused, naming the fields, leaving nothing
    capsys.readouterr()
    assert main(args[:5] + [str(tmp_path / "run2")] + args[6:] + ["--set", "model.quantizer.n_q=3"]) == 1
    assert "differs from the recipe's in quantizer.n_q" in capsys.readouterr().err
    assert not (tmp_path / "run2").exists()
    # --name names it; so does model.name
    assert main(args[:5] + [str(tmp_path / "run3")] + args[6:] + ["--name", "mine"]) == 0
    assert load_model_file(tmp_path / "run3" / "model.pt").config.name == "mine"
    # how the quantizer learns may change (quantizer surgery carries the codewords over)
    assert main(args[:5] + [str(tmp_path / "run4")] + args[6:] + ["--set", "model.quantizer.codebook=simvq",
                                                                 "--set", "model.quantizer.estimator=ste"]) == 0
    carried = load_model_file(tmp_path / "run4" / "model.pt")
    assert carried.config.quantizer.codebook == "simvq" and carried.config.quantizer.estimator == "ste"
    enc = [torch.nn.utils.parameters_to_vector(m.encoder.parameters()) for m in (start, carried, Codec(start.config))]
    assert (enc[1] - enc[0]).norm() < 0.2 * (enc[2] - enc[0]).norm()  # one step from the given weights


def test_files_holding_python_objects_are_refused_without_torchs_hint(audio_dir, tmp_path):
    """torch's refusal suggests ``weights_only=False`` ("will likely succeed"): advice that would let a
    file run code. rotcodec says it never unpickles such files."""
    import pathlib

    from rotcodec.errors import FormatError

    run = tmp_path / "run"
    run.mkdir()
    torch.save({"format": "rotcodec-checkpoint", "step": pathlib.PurePosixPath("x")}, run / "checkpoint.pt")
    with pytest.raises(FormatError) as err:
        train(load_recipe(RECIPES / "tiny_cpu.toml", FAST), [str(audio_dir)], run, resume=True, progress=False)
    as_model = _refusal(rotcodec.load_model, str(run / "checkpoint.pt"))  # the model loader says the same
    for message, what in ((str(err.value), "rotcodec checkpoint"), (as_model, "rotcodec model file")):
        assert f"is not a loadable {what}" in message and "rotcodec never unpickles such files" in message
        assert "pathlib.PurePosixPath" in message  # what it holds
        assert "weights_only" not in message and "succeed" not in message and "can still be loaded" not in message


def _refusal(load, *args, **kwargs) -> str:
    from rotcodec.errors import FormatError

    with pytest.raises(FormatError) as err:
        load(*args, **kwargs)
    return str(err.value)


def test_progress_line_gives_mm_ss_rate_and_loss():
    line = progress_line(250, 1000, 100.0, 300.0, 2.5, 3.1204, 0.8121)
    assert line == ("[######..................] step 250/1000  01:40 elapsed  05:00 left  2.50 steps/s  "
                    "loss 3.120 mel 0.812")
    assert [clock(s) for s in (0, 59.9, 61, 7505, None, math.inf)] == ["00:00", "00:59", "01:01", "125:05",
                                                                      "--:--", "--:--"]
    # no step limit, no time limit: the count alone, remaining unknown
    assert progress_line(7, 0, 30.0, None, 1.0, 2.0) == "step 7  00:30 elapsed  --:-- left  1.00 steps/s  loss 2.000"
    # the remaining time comes from whichever limit stops the run first
    assert remaining_seconds(250, 1000, 2.5, math.inf) == 300.0  # train.steps at the rate
    assert remaining_seconds(250, 0, 2.5, 90.0) == 90.0  # train.max_minutes
    assert remaining_seconds(250, 1000, 2.5, 60.0) == 60.0  # both: the time limit comes first
    assert remaining_seconds(250, 0, 2.5, math.inf) is None


def test_progress_writes_whole_lines_through_a_pipe_and_redraws_in_a_terminal():
    now = [0.0]
    pipe = io.StringIO()
    printer = ProgressPrinter(pipe, now=lambda: now[0])
    assert not printer.terminal and printer.interval == PIPE_SECONDS
    printer.show("first", force=True)
    now[0] = PIPE_SECONDS / 2
    printer.show("too soon")
    now[0] = PIPE_SECONDS
    printer.show("second")
    printer.message("step 2: valid mel 1.000")
    printer.close()
    assert pipe.getvalue() == "first\nsecond\nstep 2: valid mel 1.000\n"
    tty = io.StringIO()
    printer = ProgressPrinter(tty, terminal=True, now=lambda: now[0])
    assert printer.interval == TERMINAL_SECONDS
    printer.show("a longer line", force=True)
    printer.show("short", force=True)
    printer.message("valid")
    printer.close()
    assert tty.getvalue() == "\ra longer line\rshort        \nvalid\n"


def test_training_progress_into_a_pipe_is_whole_lines(audio_dir, tmp_path, capsys):
    train(load_recipe(RECIPES / "tiny_cpu.toml", FAST), [str(audio_dir)], tmp_path / "run")  # progress on
    err = capsys.readouterr().err  # not a terminal
    lines = [line for line in err.splitlines() if line.startswith("[")]
    assert "\r" not in err and err.endswith("\n") and lines, err
    assert " step 1/4 " in lines[0] and " step 4/4 " in lines[-1]  # the first and last steps always show
    assert re.search(r"\] step 4/4  \d\d:\d\d elapsed  00:00 left  \d+\.\d\d steps/s  loss \d+\.\d{3} mel ", lines[-1])


def test_steps_zero_trains_until_the_time_limit(audio_dir, tmp_path, monkeypatch):
    import time

    ticks = iter(range(10**6))
    monkeypatch.setattr(time, "process_time", lambda: float(next(ticks)))
    sets = FAST + ["train.steps=0", "train.max_minutes=0.05", 'train.clock="cpu"']
    result = train(load_recipe(RECIPES / "tiny_cpu.toml", sets), [str(audio_dir)], tmp_path / "run", progress=False)
    assert result.state.step >= 2 and (tmp_path / "run" / "model.pt").exists()
    with pytest.raises(ValueError, match="train.steps"):
        train(load_recipe(RECIPES / "tiny_cpu.toml", FAST + ["train.steps=-1"]), [str(audio_dir)], tmp_path / "bad")


def _ddp_worker(rank: int, world: int, init_file: str, data: str, out: str, hashes: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        recipe = load_recipe(RECIPES / "tiny_cpu.toml", FAST + ["train.steps=3"])
        result = train(recipe, [data], out, progress=False)
        Path(hashes, f"{rank}.txt").write_text(weights_hash(result.model))
    finally:
        torch.distributed.destroy_process_group()


def test_ddp_gloo_two_processes_keep_replicas_identical(audio_dir, tmp_path):
    hashes = tmp_path / "hashes"
    hashes.mkdir()
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(audio_dir), str(tmp_path / "run"), str(hashes)),
             nprocs=2, join=True)
    h0, h1 = (hashes / "0.txt").read_text(), (hashes / "1.txt").read_text()
    assert h0 == h1
    assert h0 == weights_hash(load_model_file(tmp_path / "run" / "model.pt"))
    assert len(read_log(tmp_path / "run")) >= 3  # rank 0 logged


def test_non_finite_losses_skip_steps_then_stop(audio_dir, tmp_path, monkeypatch):
    import rotcodec.train.loop as loop

    monkeypatch.setattr(loop, "generator_step", lambda *a, **k: (None, None))
    recipe = load_recipe(RECIPES / "tiny_cpu.toml", FAST + ["train.max_bad_steps=3"])
    with pytest.raises(RuntimeError, match="non-finite"):
        train(recipe, [str(audio_dir)], tmp_path / "bad", progress=False)
    skips = read_log(tmp_path / "bad", "skip")
    assert len(skips) == 3 and not math.isnan(skips[-1]["bad_steps"])


def test_checkpoints_without_discriminators_when_the_recipe_has_none(audio_dir, tmp_path):
    from rotcodec.train.checkpoint import read_checkpoint

    plain = FAST + ["train.steps=2", "loss.adversarial=false"]
    train(load_recipe(RECIPES / "tiny_cpu.toml", plain), [str(audio_dir)], tmp_path / "plain", progress=False)
    blob = read_checkpoint(tmp_path / "plain" / "checkpoint.pt")
    assert "disc" not in blob and "opt_d" not in blob
    # it resumes under the same recipe; an adversarial recipe cannot pretend to continue it
    train(load_recipe(RECIPES / "tiny_cpu.toml", plain[:-2] + ["train.steps=3", "loss.adversarial=false"]),
          [str(audio_dir)], tmp_path / "plain", resume=True, progress=False)
    with pytest.raises(ValueError, match="without discriminators"):
        train(load_recipe(RECIPES / "tiny_cpu.toml", FAST + ["train.steps=4", "loss.adversarial=true"]),
              [str(audio_dir)], tmp_path / "plain", resume=True, progress=False)
    train(load_recipe(RECIPES / "tiny_cpu.toml", FAST + ["train.steps=2", "loss.adversarial=true"]), [str(audio_dir)],
          tmp_path / "adv", progress=False)
    assert "disc" in read_checkpoint(tmp_path / "adv" / "checkpoint.pt")
