"""The bundled general-audio model, audio24k-cpu: loaded by name, listed, named in its files, and
coding a 44.1 kHz stereo signal back at its rate, channels and length (issue 41)."""

import io

import numpy as np
import pytest
import torch

import rotcodec
from rotcodec.io.container import read_header
from rotcodec.metrics import mel_distance
from rotcodec.models import list_models

NAME = "audio24k-cpu"


@pytest.fixture(scope="module")
def general():
    return rotcodec.load_model(NAME)


def _music(sr: int = 44100, seconds: float = 1.2) -> np.ndarray:
    """A chord with a decaying pluck and a little noise, different in each channel: [2, T]."""
    t = np.arange(int(sr * seconds)) / sr
    rng = np.random.default_rng(0)
    left = sum(0.08 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 1760.0))
    right = 0.2 * np.sin(2 * np.pi * 440.0 * t) * np.exp(-3 * t) + 0.05 * np.sin(2 * np.pi * 5000.0 * t)
    return (np.stack([left, right]) + 0.003 * rng.standard_normal((2, t.size))).astype(np.float32)


def test_loaded_by_name_and_listed(general):
    assert general.sample_rate == 24000 and general.n_q == 16 and general.config.arch == "stft"
    assert abs(general.bitrate() - 12000) < 1e-6 and abs(general.bitrate(1) - 750) < 1e-6
    info = {m.name: m for m in list_models()}
    assert NAME in info and "music" in info[NAME].about
    assert "stft16k-cpu" in info  # the speech model stays the default beside it


def test_a_44k_stereo_file_comes_back_at_its_rate_channels_and_length_and_decodes_without_flags(general):
    wav = _music()
    data = rotcodec.compress(wav, 44100, model=NAME, kbps=12)
    header = read_header(io.BytesIO(data))
    assert header.model.startswith(NAME + "@") and header.channels == 2 and header.n_q == 8  # 6 kbps a channel
    out, sr = rotcodec.decompress(data)  # no model given: the header names a bundled model
    assert sr == 44100 and tuple(out.shape) == wav.shape
    # It codes the signal, not just its shape: far closer than silence, and the highs the speech
    # model cuts at 8 kHz (the 5 kHz tone here is kept by both) come back.
    est = out.numpy()
    for ch in range(2):
        coded = mel_distance(torch.from_numpy(wav[ch]), torch.from_numpy(est[ch]), 44100)
        silent = mel_distance(torch.from_numpy(wav[ch]), torch.zeros(wav.shape[1]), 44100)
        assert coded < 0.25 * silent, (ch, coded, silent)


def test_the_stft24k_preset_at_test_size_and_a_warm_start_from_a_16k_model():
    from rotcodec import Codec, CodecConfig
    from rotcodec.model.growth import warm_start_state

    small = {"width": 16, "blocks": 1, "expansion": 2, "latent_dim": 16}
    cfg24 = CodecConfig.preset("stft24k").with_updates(**small)
    assert cfg24.sample_rate == 24000 and cfg24.frame_rate == 75.0 and cfg24.quantizer.n_q == 16
    torch.manual_seed(0)
    model = Codec(cfg24).train()
    out = model(torch.randn(2, 1, 24000 // 3 + 7) * 0.1)
    assert out.wav.shape == (2, 1, 24000 // 3 + 7) and out.codes.shape == (2, 16, 26)
    # From a 16 kHz model of the same trunk: every tensor of the same name and shape carries over,
    # the stages it lacks start fresh.
    cfg16 = CodecConfig.preset("stft16k").with_updates(**small)
    speech = Codec(cfg16)
    state, fresh = warm_start_state(speech.state_dict(), Codec(cfg24).state_dict())
    assert torch.equal(state["decoder.trunk.proj_out.weight"], speech.state_dict()["decoder.trunk.proj_out.weight"])
    assert fresh and all(k.startswith("quantizer.layers.1") and int(k.split(".")[2]) >= 12 for k in fresh)
