"""The Codec: shapes, bitrates, encode/decode contract, save/load, parts injection, a tiny training run."""

import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rotcodec
from rotcodec import Codec, CodecConfig, FormatError
from rotcodec.bitrate import BitrateCapped
from rotcodec.model.seanet import receptive_field


@pytest.fixture(scope="module")
def tiny() -> Codec:
    torch.manual_seed(0)
    model = Codec(CodecConfig.preset("tiny"))
    model.train()
    model(torch.randn(2, 1, 3200) * 0.1)  # k-means init of every stage
    return model.eval()


def test_presets_bitrates_and_sizes():
    expected = {"tiny": (16000, 50.0, 1600.0), "speech16k": (16000, 50.0, 6000.0), "audio24k": (24000, 75.0, 24000.0)}
    for name, (sr, fps, bps) in expected.items():
        model = Codec(CodecConfig.preset(name))
        assert model.sample_rate == sr and model.frame_rate == fps and model.bitrate() == bps
    assert Codec(CodecConfig.preset("speech16k")).bitrate(1) == 500.0
    assert Codec(CodecConfig.preset("audio24k")).bitrate(1) == 750.0
    assert sum(p.numel() for p in Codec(CodecConfig.preset("tiny")).parameters()) < 1_000_000
    with pytest.raises(ValueError, match="unknown preset"):
        CodecConfig.preset("nope")


def test_n_q_for_kbps():
    model = Codec(CodecConfig.preset("speech16k"))
    assert model.n_q_for_kbps(None) == 12
    assert model.n_q_for_kbps(6) == 12
    with pytest.warns(BitrateCapped, match="capped at 6 kbps"):
        assert model.n_q_for_kbps(100) == 12
    assert model.n_q_for_kbps(1.5) == 3
    assert model.n_q_for_kbps(1.49) == 2
    assert model.n_q_for_kbps(0.5) == 1
    for bad in (0.49, 0.0, -1.0, math.nan):
        with pytest.raises(ValueError):
            model.n_q_for_kbps(bad)
    with pytest.raises(ValueError, match="below one stage"):
        model.n_q_for_kbps(0.3)


@settings(max_examples=15, deadline=None)
@given(length=st.integers(min_value=1, max_value=2000), n_q=st.integers(min_value=1, max_value=4))
def test_output_length_equals_input_length(tiny, length, n_q):
    wav = torch.randn(1, 1, length) * 0.1
    codes = tiny.encode(wav, n_q)
    assert codes.shape == (1, n_q, math.ceil(length / tiny.hop_length))
    assert tiny.decode(codes, length).shape == (1, 1, length)
    assert tiny(wav, n_q).wav.shape == (1, 1, length)


def test_eval_forward_equals_decode_of_encode(tiny):
    torch.manual_seed(1)
    wav = torch.randn(3, 1, 4321) * 0.2
    for n_q in (1, 2, 4):
        with torch.no_grad():
            out = tiny(wav, n_q)
        codes = tiny.encode(wav, n_q)
        assert torch.equal(codes, out.codes[:, :n_q])
        assert torch.allclose(tiny.decode(codes, wav.shape[-1]), out.wav, atol=1e-6)


def test_encode_rejects_bad_shapes(tiny):
    for shape in [(100,), (1, 100), (1, 2, 100), (1, 1, 0)]:
        with pytest.raises(ValueError):
            tiny.encode(torch.zeros(shape))


def test_codes_do_not_depend_on_far_away_samples(tiny):
    """A frame depends only on samples within the receptive field (what chunked coding relies on)."""
    torch.manual_seed(2)
    hop = tiny.hop_length
    wav = torch.randn(1, 1, 200 * hop) * 0.1
    far = wav.clone()
    far[..., 150 * hop :] = torch.randn(1, 1, 50 * hop) * 0.1
    horizon = math.ceil(receptive_field(tiny.config) / hop)
    a, b = tiny.encode(wav), tiny.encode(far)
    assert torch.equal(a[..., : 150 - horizon], b[..., : 150 - horizon])
    assert not torch.equal(a, b)


def test_save_and_load_round_trip(tiny, tmp_path):
    path = tmp_path / "m.pt"
    tiny.save(path)
    loaded = rotcodec.load_model(path)
    assert loaded.config == tiny.config and not loaded.training
    wav = torch.randn(1, 1, 1000) * 0.1
    assert torch.equal(loaded.encode(wav), tiny.encode(wav))
    assert not list(tmp_path.glob("*.tmp"))
    tiny.save(tmp_path / "half.pt", half=True)
    half = rotcodec.load_model(tmp_path / "half.pt")
    assert (tmp_path / "half.pt").stat().st_size < 0.7 * path.stat().st_size
    assert next(half.parameters()).dtype == torch.float32
    out = half.decode(half.encode(wav), 1000)
    assert (out - tiny.decode(tiny.encode(wav), 1000)).abs().max() < 0.05


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_load_refuses_bad_files(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(FormatError):
        rotcodec.load_model(garbage)

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "rotcodec-model", "x": Payload()}))
    with pytest.raises(FormatError):
        rotcodec.load_model(evil)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(FormatError, match="not a rotcodec model"):
        rotcodec.load_model(other)
    with pytest.raises(FileNotFoundError):
        rotcodec.load_model(tmp_path / "missing.pt")


def test_config_dict_round_trip_is_strict():
    cfg = CodecConfig.preset("speech16k")
    assert CodecConfig.from_dict(cfg.to_dict()) == cfg
    bad = cfg.to_dict()
    bad["quantizer"]["estimatr"] = "ste"
    with pytest.raises(ValueError, match="quantizer.estimatr"):
        CodecConfig.from_dict(bad)
    assert cfg.with_updates(quantizer={"estimator": "ste"}).quantizer.estimator == "ste"
    with pytest.raises(ValueError):
        cfg.with_updates(quantizer={"estimator": "magic"})


class IdentityQuantizer(torch.nn.Module):
    """Passes the latent through; codes are a dummy single stage (parts injection)."""

    def forward(self, z, n_q=None, metrics=True):
        from rotcodec.quantize import RVQResult

        b, _, f = z.shape
        codes = torch.zeros(b, 1, f, dtype=torch.long)
        return RVQResult(z, codes, {}, {}, torch.ones(b, dtype=torch.long))


def test_parts_can_be_passed_in():
    cfg = CodecConfig.preset("tiny")
    model = Codec(cfg, quantizer=IdentityQuantizer())
    out = model(torch.randn(2, 1, 1000))
    assert out.wav.shape == (2, 1, 1000) and out.losses == {}


def multi_stft_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss = (x - y).abs().mean()
    for n_fft in (256, 512):
        win = torch.hann_window(n_fft)
        sx = torch.stft(x.squeeze(1), n_fft, n_fft // 4, window=win, return_complex=True).abs()
        sy = torch.stft(y.squeeze(1), n_fft, n_fft // 4, window=win, return_complex=True).abs()
        loss = loss + (torch.log(sx + 1e-5) - torch.log(sy + 1e-5)).abs().mean()
    return loss


@pytest.mark.parametrize("estimator", ["rotation", "ste"])
def test_tiny_codec_training_lowers_reconstruction_loss(estimator):
    torch.manual_seed(0)
    cfg = CodecConfig.preset("tiny").with_updates(quantizer={"estimator": estimator})
    model = Codec(cfg)
    t = torch.arange(4000) / cfg.sample_rate
    freqs = torch.tensor([[220.0], [330.0], [440.0], [587.0]])
    wav = (0.3 * torch.sin(2 * math.pi * freqs * t) + 0.1 * torch.sin(2 * math.pi * 3 * freqs * t))[:, None]

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            value = multi_stft_loss(model(wav).wav, wav).item()
        model.train()
        return value

    model.train()
    model(wav)  # k-means init before the baseline, so only learning is measured
    before = eval_loss()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(100):
        out = model(wav)
        loss = multi_stft_loss(out.wav, wav) + out.losses["vq/commit"] + out.losses["vq/codebook"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after < 0.8 * before, (before, after)
