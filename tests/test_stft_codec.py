"""The STFT-domain family: lossless framing, shapes for any length, locality (chunked = whole on a
real clip), the compressed STFT loss, a tiny run whose loss falls, and old model files still loading."""

import math
from pathlib import Path

import pytest
import soundfile as sf
import torch

import rotcodec
from rotcodec import Codec, CodecConfig
from rotcodec.coding import decode_chunked, encode_chunked
from rotcodec.model.stft import analysis_window, compress, decompress, istft_frames, stft_frames
from rotcodec.train.config import Recipe
from rotcodec.train.losses import CompressedStftLoss
from rotcodec.train.steps import autocast_for, build_parts, generator_step

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture(scope="module")
def tiny_stft() -> Codec:
    torch.manual_seed(0)
    model = Codec(CodecConfig.preset("tiny_stft"))
    model.train()
    model(torch.randn(4, 1, 6400) * 0.1)  # k-means init of every stage
    return model.eval()


@pytest.mark.parametrize("window,hop", [(320, 80), (640, 160), (512, 128)])
def test_stft_then_istft_is_lossless(window, hop):
    """The framing loses nothing before any learning: iSTFT(STFT(x)) == x for x a multiple of hop."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 40 * hop, generator=g, dtype=torch.float64)
    spec = stft_frames(x, window, hop)
    assert spec.shape == (3, window // 2 + 1, 40)  # exactly T / hop frames ("same" framing)
    assert torch.allclose(istft_frames(spec, window, hop), x, atol=1e-10)
    w = analysis_window(window, dtype=torch.float64)
    assert w.min() > 0  # no zero sample: torch.istft(center=False) can divide by the envelope
    envelope = sum(torch.roll(w.pow(2), k * hop) for k in range(window // hop))
    assert torch.allclose(envelope, envelope.mean().expand_as(envelope), atol=1e-12)  # constant overlap-add


def test_compress_decompress_inverse():
    g = torch.Generator().manual_seed(1)
    x = torch.complex(torch.randn(100, generator=g, dtype=torch.float64), torch.randn(100, generator=g, dtype=torch.float64))
    y = compress(x, 0.3)
    assert torch.allclose(y.abs(), x.abs().pow(0.3)) and torch.allclose(torch.angle(y), torch.angle(x))
    assert torch.allclose(decompress(y, 0.3), x)


def test_preset_contract():
    model = Codec(CodecConfig.preset("stft16k"))
    assert model.hop_length == 320 and model.frame_rate == 50.0
    assert model.bitrate(1) == 500.0 and model.bitrate() == 6000.0
    assert model.n_q_for_kbps(1.5) == 3 and model.n_q_for_kbps(3) == 6
    with pytest.raises(ValueError, match="arch"):
        CodecConfig.preset("stft16k").with_updates(arch="transformer")
    with pytest.raises(ValueError, match="stft_window"):
        CodecConfig.preset("stft16k").with_updates(stft_window=321)


@pytest.mark.parametrize("length", [1, 79, 320, 321, 1000, 4799])
def test_shapes_and_length_for_any_length(tiny_stft, length):
    wav = torch.randn(2, 1, length) * 0.1
    codes = tiny_stft.encode(wav)
    assert codes.shape == (2, 4, math.ceil(length / 320)) and codes.dtype == torch.int64
    assert tiny_stft.decode(codes, length).shape == (2, 1, length)
    out = tiny_stft(wav)
    assert out.wav.shape == wav.shape
    assert torch.allclose(out.wav, tiny_stft.decode(codes, length), atol=1e-5)  # eval forward == decode(encode)


def test_codes_do_not_depend_on_far_away_samples(tiny_stft):
    torch.manual_seed(2)
    hop = tiny_stft.hop_length
    wav = torch.randn(1, 1, 100 * hop) * 0.1
    far = wav.clone()
    far[..., 70 * hop:] = torch.randn(1, 1, 30 * hop) * 0.1
    horizon = tiny_stft.encoder_context_frames()
    a, b = tiny_stft.encode(wav), tiny_stft.encode(far)
    assert torch.equal(a[..., : 70 - horizon], b[..., : 70 - horizon])
    assert not torch.equal(a, b)
    # and the decoder: changing late codes leaves early samples alone
    c = a.clone()
    c[..., 70:] = (c[..., 70:] + 1) % 256
    d_ctx = tiny_stft.decoder_context_frames()
    x, y = tiny_stft.decode(a), tiny_stft.decode(c)
    assert torch.equal(x[..., : (70 - d_ctx) * hop], y[..., : (70 - d_ctx) * hop])


@pytest.mark.parametrize("chunk_frames", [7, 50, 128])
def test_chunked_codes_equal_whole_codes_on_a_real_clip(tiny_stft, chunk_frames):
    audio, sr = sf.read(SAMPLES / "speech_en.wav", dtype="float32", always_2d=True)
    assert sr == 16000
    wav = torch.from_numpy(audio.T[:, : 16000 * 4].copy())  # [1, T], 4 s
    whole = tiny_stft.encode(wav[None], 4)[0]
    exact_whole = encode_chunked(tiny_stft, wav, 4, chunk_frames=10_000, exact=True)  # one chunk, float64
    assert torch.equal(encode_chunked(tiny_stft, wav, 4, chunk_frames=chunk_frames, exact=True), exact_whole)
    # float32 chunks: near ties may flip, but almost never
    fast = encode_chunked(tiny_stft, wav, 4, chunk_frames=chunk_frames)
    assert (fast != whole).float().mean() < 0.01
    decoded = decode_chunked(tiny_stft, whole[None], wav.shape[-1], chunk_frames=chunk_frames)
    assert torch.allclose(decoded, tiny_stft.decode(whole[None], wav.shape[-1])[0], atol=1e-5)


def test_compressed_stft_loss_zero_for_identical_positive_otherwise():
    torch.manual_seed(0)
    loss = CompressedStftLoss(16000)
    x = torch.randn(2, 1, 4000) * 0.1
    assert loss(x, x).item() == 0.0
    assert loss(0.5 * x, x).item() > 0
    assert loss(x + 0.01 * torch.randn_like(x), x).item() > 0
    # it sees phase: a one-sample shift barely moves the spectrum's magnitude, but moves this loss
    shifted = torch.roll(x, 1, -1)
    assert loss(shifted, x).item() > 10 * loss(1.05 * x, x).item()
    est = (x * 0.5).requires_grad_(True)
    loss(est, x).backward()
    assert torch.isfinite(est.grad).all()


def test_loss_of_silence_has_a_finite_gradient():
    est = torch.zeros(1, 1, 2000, requires_grad=True)
    CompressedStftLoss(16000)(est, torch.randn(1, 1, 2000) * 0.1).backward()
    assert torch.isfinite(est.grad).all()


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    recipe = Recipe.from_dict({"model": {"preset": "tiny_stft"}, "loss": {"adversarial": False, "stft": 20.0},
                               "optim": {"lr": 3e-3, "warmup_steps": 1}})
    parts = build_parts(recipe, torch.device("cpu"))
    t = torch.arange(8000) / 16000
    real = torch.stack([0.2 * torch.sin(2 * math.pi * f * t) for f in (220.0, 330.0)])[:, None]
    amp = autocast_for(recipe, torch.device("cpu"))
    first = None
    for step in range(40):
        logs, _ = generator_step(parts, recipe, real, step, amp)
        first = logs if first is None else first
    assert logs["stft"] < 0.5 * first["stft"] and logs["mel"] < first["mel"]


def test_model_files_without_arch_still_load_as_seanet(tmp_path):
    """Files written before the ``arch`` field existed keep loading (as the SEANet family)."""
    model = Codec(CodecConfig.preset("tiny"))
    blob = model.model_file()
    for key in ("arch", "stft_window", "stft_hop", "stft_stack", "width", "blocks", "expansion", "compress"):
        del blob["config"][key]
    torch.save(blob, tmp_path / "old.pt")
    loaded = rotcodec.load_model(tmp_path / "old.pt")
    assert loaded.config.arch == "seanet" and loaded.config == model.config


def test_save_load_stft_model(tiny_stft, tmp_path):
    tiny_stft.save(tmp_path / "m.pt", half=True)
    loaded = rotcodec.load_model(tmp_path / "m.pt")
    assert loaded.config == tiny_stft.config
    wav = torch.randn(1, 1, 3000) * 0.1
    assert (loaded.decode(loaded.encode(wav), 3000) - tiny_stft.decode(tiny_stft.encode(wav), 3000)).abs().max() < 0.05
