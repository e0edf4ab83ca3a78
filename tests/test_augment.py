"""Training data for unheard voices: augmentation (seeded, length-true, level-safe, each kind real),
per-folder sampling weights, and training segments conditioned as the encoder conditions."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from rotcodec.coding.conditioning import TARGET_DB
from rotcodec.train.augment import augment, speed_span
from rotcodec.train.config import AugmentConfig, load_recipe
from rotcodec.train.data import SegmentDataset, file_weights, scan_audio

SR = 16000
KINDS = {"speed": {"speed": 1.0}, "eq": {"eq": 1.0}, "reverb": {"reverb": 1.0},
         "band": {"band": 1.0}, "noise": {"noise": 1.0}}


def _speech_like(seconds: float = 1.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(SR * seconds)) / SR
    f0 = 120 + 40 * torch.sin(2 * math.pi * 3 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / SR
    x = sum(0.3 / k * torch.sin(k * phase) for k in range(1, 25))
    x = x * (0.6 + 0.4 * torch.sin(2 * math.pi * 4 * t)) + 0.003 * torch.randn(t.shape, generator=g)
    return (x / x.abs().max() * 0.5)[None].float()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_changes_the_signal_keeps_length_and_range(kind):
    cfg = AugmentConfig(**KINDS[kind])
    x = _speech_like(1.2)
    y = augment(x, SR, cfg, torch.Generator().manual_seed(1), length=SR)
    assert y.shape == (1, SR)
    assert torch.isfinite(y).all() and y.abs().max() <= 1.0
    assert (y - x[:, :SR]).abs().max() > 1e-3, f"{kind} left the signal unchanged"
    assert y.pow(2).mean() > 1e-6  # not silenced


def test_band_limiting_removes_what_is_above_the_band():
    x = torch.randn(1, SR, generator=torch.Generator().manual_seed(0)) * 0.1
    y = augment(x, SR, AugmentConfig(band=1.0, phone_share=1.0), torch.Generator().manual_seed(0))
    spec = lambda w: torch.fft.rfft(w[0]).abs().pow(2)  # noqa: E731
    hz = torch.fft.rfftfreq(SR, 1 / SR)
    high = hz > 5000
    assert spec(y)[high].sum() < 1e-3 * spec(x)[high].sum()  # phone band: nothing left up there


def test_noise_sets_the_snr():
    x = _speech_like()
    cfg = AugmentConfig(noise=1.0, noise_snr_db=(10.0, 10.0))
    y = augment(x, SR, cfg, torch.Generator().manual_seed(3))
    snr = 10 * math.log10(float(x.pow(2).sum() / (y - x).pow(2).sum()))
    assert snr == pytest.approx(10.0, abs=0.5)


def test_same_generator_same_result_and_nothing_when_off():
    cfg = AugmentConfig(speed=0.5, eq=0.5, reverb=0.5, band=0.5, noise=0.5)
    x = _speech_like(1.2)
    runs = [augment(x, SR, cfg, torch.Generator().manual_seed(7), length=SR) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], augment(x, SR, cfg, torch.Generator().manual_seed(8), length=SR))
    assert not AugmentConfig().active
    assert torch.equal(augment(x, SR, AugmentConfig(), torch.Generator(), length=SR), x[:, :SR])


def test_speed_changes_duration_and_the_span_read_covers_it():
    cfg = AugmentConfig(speed=1.0, speed_range=(1.1, 1.1))
    assert speed_span(cfg) == pytest.approx(1.1)
    assert speed_span(AugmentConfig()) == 1.0
    x = _speech_like(1.1)
    y = augment(x, SR, cfg, torch.Generator(), length=SR)
    # a 1.1x speed-up of 1.1 s fills 1 s with signal, to its last samples
    assert y[:, -160:].abs().max() > 1e-3


def _folder(path, n, seconds, freq):
    path.mkdir(parents=True)
    t = np.arange(int(SR * seconds)) / SR
    for i in range(n):
        sf.write(path / f"c{i}.wav", (0.1 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)
    return path


def test_folder_weights_share_the_draws(tmp_path):
    big = _folder(tmp_path / "big" / "train", 8, 2.0, 200)
    small = _folder(tmp_path / "small" / "train", 2, 0.5, 400)
    files = scan_audio([big, small])
    by_time = file_weights(files)
    share = lambda w: float(w[[f.root == str(small) for f in files]].sum() / w.sum())  # noqa: E731
    assert share(by_time) == pytest.approx(1.0 / 17.0)
    balanced = file_weights(files, {"big": 1.0, "small": 1.0})
    assert share(balanced) == pytest.approx(0.5)
    assert share(file_weights(files, {"big": 3.0, "small": 1.0})) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="matches no key"):
        file_weights(files, {"big": 1.0})
    with pytest.raises(ValueError, match="positive"):
        file_weights(files, {"big": 1.0, "small": 0.0})
    ds = SegmentDataset(files, SR, 0.25, (-20.0, -20.0), seed=0, weights=balanced)
    draws = [ds[i] for i in range(200)]  # the 400 Hz files are the small folder's
    high = sum(float(torch.fft.rfft(d[0])[100].abs()) > float(torch.fft.rfft(d[0])[50].abs()) for d in draws)
    assert 70 < high < 130


def test_segments_are_conditioned_like_the_encoder_input(tmp_path):
    folder = _folder(tmp_path / "quiet", 2, 2.0, 300)
    quiet = 0.003 * np.sin(2 * np.pi * 300 * np.arange(2 * SR) / SR) + 0.05  # -53 dBFS and a DC offset
    sf.write(folder / "c0.wav", quiet.astype(np.float32), SR)
    ds = SegmentDataset(scan_audio([folder]), SR, 0.5, (-20.0, -20.0), seed=0, condition_block=SR // 2)
    for i in range(6):
        seg = ds[i]
        assert abs(float(seg.mean())) < 1e-3  # DC removed
        rms_db = 20 * math.log10(float(seg.pow(2).mean().sqrt()))
        assert rms_db == pytest.approx(TARGET_DB, abs=1.0)  # each gain block at the target level


def test_the_rounds_recipe_trains_the_bundled_model_on_all_folders_with_augmentation():
    root = __import__("pathlib").Path(__file__).resolve().parent.parent / "recipes"
    rounds, base = load_recipe(root / "stft16k_rounds.toml"), load_recipe(root / "stft16k_cpu.toml")
    assert rounds.model == base.model  # --init from the shipped weights needs the same model
    assert set(rounds.data.weights) == {"speech16k", "voices16k", "tuxpaint16k", "games16k"}
    assert not {"unseen16k", "unseenx16k"} & set(rounds.data.weights)
    assert rounds.augment.active and rounds.data.condition
