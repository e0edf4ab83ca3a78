"""Metrics on known signals: identical gives the best score, added noise lowers it."""

import math

import numpy as np
import pytest
import torch

from rotcodec.metrics import mel_distance, pesq_wb, si_sdr, stoi


def voiced(sample_rate: int, seconds: float = 2.0) -> torch.Tensor:
    """A speech-like signal: harmonics of a gliding pitch under a syllable-rate envelope."""
    t = torch.arange(int(sample_rate * seconds), dtype=torch.float64) / sample_rate
    f0 = 140 + 30 * torch.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sample_rate
    x = sum(torch.sin(k * phase) / k for k in range(1, 20))
    return (0.3 * x * torch.sin(2 * math.pi * 3 * t).clamp_min(0).sqrt()).float()


@pytest.fixture(scope="module")
def signals():
    torch.manual_seed(0)
    x = voiced(16000)
    return x, x + 0.01 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)


def test_si_sdr(signals):
    x, a_little, a_lot = signals
    best = si_sdr(x, x)
    assert best > 100
    assert best > si_sdr(x, a_little) > si_sdr(x, a_lot)
    assert si_sdr(x, 3 * x) == pytest.approx(best, abs=25)  # scale-invariant: still near perfect
    assert si_sdr(x, 3 * x) > 80
    noise = torch.randn_like(x)
    assert si_sdr(x, x + noise * x.norm() / noise.norm()) == pytest.approx(0.0, abs=0.5)  # 0 dB SNR
    two = torch.stack([x, x]), torch.stack([x, a_lot])
    assert si_sdr(*two) == pytest.approx((best + si_sdr(x, a_lot)) / 2)
    assert si_sdr(x.numpy(), a_little.numpy()) == pytest.approx(si_sdr(x, a_little))
    with pytest.raises(ValueError):
        si_sdr(x, x[:-1])


def test_mel_distance(signals):
    x, a_little, a_lot = signals
    assert mel_distance(x, x, 16000) == 0.0
    assert 0 < mel_distance(x, a_little, 16000) < mel_distance(x, a_lot, 16000)
    y = voiced(44100, 1.0)
    assert mel_distance(y, y, 44100) == 0.0
    assert mel_distance(y, y + 0.05 * torch.randn_like(y), 44100) > 0.1
    stereo = np.stack([x.numpy(), a_lot.numpy()])
    assert mel_distance(stereo, stereo, 16000) == 0.0


def test_pesq_wb(signals):
    x, a_little, a_lot = signals
    best = pesq_wb(x, x, 16000)
    assert best > 4.4
    assert best > pesq_wb(x, a_little, 16000) > pesq_wb(x, a_lot, 16000)
    y = voiced(44100, 1.5)  # resampled to 16 kHz inside
    assert pesq_wb(y, y, 44100) > 4.4
    assert pesq_wb(x[:2000], x[:2000], 16000) is None  # 0.125 s: too short
    silence = torch.zeros(16000)
    assert pesq_wb(silence, silence, 16000) is None
    assert pesq_wb(x, torch.zeros_like(x), 16000) is None  # PESQ cannot score an all-zero signal


def test_stoi(signals):
    pytest.importorskip("pystoi")
    x, a_little, a_lot = signals
    best = stoi(x, x, 16000)
    assert best > 0.99
    assert best > stoi(x, a_little, 16000) > stoi(x, a_lot, 16000)
    assert stoi(x[:3000], x[:3000], 16000) is None  # too short to score
