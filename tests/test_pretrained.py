"""The bundled model: it loads with no argument, round-trips a sample at each bitrate, and is
really trained (its quality on a held-out clip is far above the same architecture's at random)."""

from pathlib import Path

import pytest
import torch

import rotcodec
from rotcodec import api, metrics, models
from rotcodec.io.audio import read_audio
from rotcodec.model.loading import weights_hash

SAMPLE = Path(__file__).parent.parent / "samples" / "speech_en.wav"


@pytest.fixture(scope="module")
def clip():
    wav, sr = read_audio(SAMPLE)
    return wav, sr


@pytest.fixture(scope="module")
def bundled():
    return rotcodec.load_model()


def test_default_model_is_bundled_and_named(bundled):
    assert api.bundled_models(), "no model in rotcodec/pretrained/"
    named = rotcodec.load_model(models.default_name())
    assert weights_hash(named) == weights_hash(bundled)
    assert bundled.sample_rate == 16000 and bundled.bitrate(None) == 6000


@pytest.mark.parametrize("kbps", [0.5, 1.5, 3.0, 6.0])
def test_round_trip_at_each_bitrate(bundled, clip, kbps):
    wav, sr = clip
    data = rotcodec.compress(wav, sr, kbps=kbps)
    out, rate = rotcodec.decompress(data)
    assert rate == sr and tuple(out.shape) == wav.shape and torch.isfinite(out).all()
    seconds = wav.shape[-1] / sr
    assert len(data) * 8 / seconds <= kbps * 1000 + 300  # nominal plus the fixed header


def test_quality_is_far_above_an_untrained_model(bundled, clip):
    wav, sr = clip
    torch.manual_seed(0)
    untrained = rotcodec.Codec(bundled.config).eval()

    def scores(model):
        out, _ = rotcodec.decompress(rotcodec.compress(wav, sr, model, kbps=6), model)
        est = out.numpy()
        return metrics.pesq_wb(wav, est, sr), metrics.mel_distance(wav, est, sr), metrics.stoi(wav, est, sr)

    (pesq_t, mel_t, stoi_t), (pesq_u, mel_u, stoi_u) = scores(bundled), scores(untrained)
    # "Really trained": the mel distance at most half an untrained model's, STOI well above it,
    # PESQ-WB above it (the next test asks more of PESQ and SI-SDR).
    assert mel_t < 0.5 * mel_u
    assert pesq_t > pesq_u
    if stoi_t is not None:
        assert stoi_t > stoi_u + 0.2


def test_quality_rises_with_bitrate_and_the_waveform_is_coded(bundled, clip):
    """More stages must code more (PESQ-WB at 6 > 3 > 1.5 kbps), and the decoded waveform must
    follow the input's (SI-SDR above 0 dB at 6 kbps): the first bundled model failed both, its
    later stages changing nothing and its phase unrelated to the input."""
    wav, sr = clip
    pesq, sdr = {}, {}
    for kbps in (1.5, 3.0, 6.0):
        out, _ = rotcodec.decompress(rotcodec.compress(wav, sr, kbps=kbps))
        pesq[kbps] = metrics.pesq_wb(wav, out.numpy(), sr)
        sdr[kbps] = float(metrics.si_sdr(wav, out.numpy()))
    assert pesq[6.0] > pesq[3.0] > pesq[1.5]
    assert sdr[6.0] > sdr[3.0] > sdr[1.5] and sdr[6.0] > 0.0
