"""The training step's speed-ups keep its arithmetic: each fast form against its plain definition,
and the optimizer and precision settings reach the trainer (issue 42; no timing here)."""

from pathlib import Path

import torch
import torchaudio

from rotcodec import Codec, CodecConfig
from rotcodec.model.stft import compress, compress_parts, decompress
from rotcodec.quantize.codebook_ops import nearest
from rotcodec.train.config import load_recipe
from rotcodec.train.losses import CompressedStftLoss, MultiScaleMelLoss
from rotcodec.train.steps import autocast_for, build_parts, generator_step

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def _signals():
    torch.manual_seed(0)
    ref = torch.randn(3, 1, 6000) * 0.1
    ref[0, :, 1000:3000] = 0.0  # digital silence: where |X| = 0 and a square root's gradient is infinite
    est = (ref + 0.02 * torch.randn_like(ref)).requires_grad_()
    return est, ref


def _mel_by_torchaudio(est, ref, sr=16000, scales=((256, 32), (512, 64), (1024, 128), (2048, 128)), floor=1e-5):
    total = 0.0
    for win, n_mels in scales:
        mel = torchaudio.transforms.MelSpectrogram(sample_rate=sr, n_fft=win, win_length=win, hop_length=win // 4,
                                                   n_mels=n_mels, power=1.0, center=True, f_min=0.0, f_max=sr / 2,
                                                   mel_scale="slaney", norm="slaney")
        a, b = (torch.log10(mel(x).clamp_min(floor)) for x in (est, ref))
        total = total + (a - b).abs().mean()
    return total / len(scales)


def _compressed_stft_by_complex_abs(est, ref, power=0.3, floor=1e-5):
    total = 0.0
    resolutions = ((320, 80), (640, 160), (160, 40))
    for w, h in resolutions:
        spec = [torch.stft(x.flatten(1), w, h, w, torch.hann_window(w), return_complex=True) for x in (est, ref)]
        c = [compress(s, power, floor) for s in spec]
        m = [s.abs().clamp_min(floor).pow(power) for s in spec]
        total = total + (c[0] - c[1]).abs().pow(2).mean() + (m[0] - m[1]).pow(2).mean()
    return total / len(resolutions)


def _value_and_grad(fn, est, ref):
    est = est.detach().requires_grad_()
    value = fn(est, ref)
    value.backward()
    return value.detach(), est.grad


def test_losses_equal_their_plain_definitions_in_value_and_gradient():
    est, ref = _signals()
    for fast, plain in ((MultiScaleMelLoss(16000), _mel_by_torchaudio),
                        (CompressedStftLoss(16000), _compressed_stft_by_complex_abs)):
        v1, g1 = _value_and_grad(fast, est, ref)
        v2, g2 = _value_and_grad(plain, est, ref)
        torch.testing.assert_close(v1, v2, rtol=1e-5, atol=0)
        assert torch.isfinite(g1).all()
        assert (g1 - g2).norm() <= 1e-4 * g2.norm()


def test_real_arithmetic_compression_equals_the_complex_one():
    torch.manual_seed(1)
    spec = torch.randn(2, 161, 30, dtype=torch.cfloat)
    spec[0, :5] = 0
    plain = spec * spec.abs().clamp_min(1e-5).pow(0.3 - 1)
    torch.testing.assert_close(compress(spec, 0.3), plain, rtol=1e-5, atol=1e-6)
    re, im = compress_parts(spec.real, spec.imag, 0.3)
    torch.testing.assert_close(torch.complex(re, im), plain, rtol=1e-5, atol=1e-6)
    y = torch.randn(2, 161, 30, dtype=torch.cfloat)
    torch.testing.assert_close(decompress(y, 0.3), y * y.abs().pow(1 / 0.3 - 1), rtol=1e-5, atol=1e-6)


def test_nearest_is_the_brute_force_argmin():
    g = torch.Generator().manual_seed(2)
    x, c = torch.randn(3000, 8, generator=g), torch.randn(1024, 8, generator=g)
    assert torch.equal(nearest(x, c), torch.cdist(x.double(), c.double()).argmin(-1))
    # ties go to the first code, as argmin's do
    assert torch.equal(nearest(torch.zeros(2, 8), torch.ones(5, 8)), torch.zeros(2, dtype=torch.long))


def test_metrics_only_when_asked_and_the_same_update_either_way():
    torch.manual_seed(3)
    cfg = CodecConfig.preset("tiny_stft")
    a = Codec(cfg).train()
    x = torch.randn(2, 1, 4000) * 0.1
    a(x)  # k-means init
    b = Codec(cfg).train()
    b.load_state_dict(a.state_dict())
    torch.manual_seed(4)
    out_a = a(x)
    torch.manual_seed(4)
    out_b = b(x, metrics=False)
    assert "vq/lambda/0" in out_a.metrics and set(out_b.metrics) == {"vq/n_q"}
    assert torch.equal(out_a.wav, out_b.wav) and torch.equal(out_a.codes, out_b.codes)
    for (name, s), t in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(s, t), name  # the EMA codebooks moved the same way


def test_precision_and_optimizer_settings_reach_the_trainer():
    recipe = load_recipe(RECIPES / "stft16k_rounds.toml")
    assert recipe.train.precision == "bf16" and recipe.optim.fused
    small = load_recipe(RECIPES / "tiny_cpu.toml", ['model.preset="tiny_stft"', 'train.precision="bf16"',
                                                    "optim.fused=false"])
    parts = build_parts(small, torch.device("cpu"))
    assert parts.opt_g.defaults["fused"] is False
    parts = build_parts(load_recipe(RECIPES / "tiny_cpu.toml", ['model.preset="tiny_stft"']), torch.device("cpu"))
    assert parts.opt_g.defaults["fused"] is True and parts.opt_d.defaults["fused"] is True
    amp = autocast_for(small, torch.device("cpu"))
    assert isinstance(amp, torch.autocast) and amp.fast_dtype == torch.bfloat16
    # Under bf16 the trunks compute in bf16 and the quantizer gets float32 with autocast off.
    parts = build_parts(small, torch.device("cpu"))
    seen = {}
    parts.codec.quantizer.register_forward_pre_hook(
        lambda m, args: seen.update(dtype=args[0].dtype, autocast=torch.is_autocast_enabled("cpu")))
    parts.codec.encoder.trunk.proj_out.register_forward_hook(lambda m, i, o: seen.update(trunk=o.dtype))
    logs, _ = generator_step(parts, small, torch.randn(2, 1, 4000) * 0.1, 0, amp)
    assert seen == {"dtype": torch.float32, "autocast": False, "trunk": torch.bfloat16}
    assert logs is not None and all(torch.isfinite(torch.tensor(v)) for v in logs.values())


def test_loss_terms_gradients_are_the_derivatives_of_their_values():
    """The written-out backward of each spectral term against finite differences in float64, on a
    spectrum with bins under each floor (where the plain expression's clamp stops the gradient)."""
    from rotcodec.train.loss_terms import compressed_parts, compressed_term, log_mel, log_mel_l1

    g = torch.Generator().manual_seed(5)
    spec = torch.randn(2, 9, 7, dtype=torch.cdouble, generator=g)
    ref = torch.randn(2, 9, 7, dtype=torch.cdouble, generator=g)
    spec[0, :2] = 1e-7  # |X| under both floors (1e-5, and |X|^2 under 1e-10), also after gradcheck's steps of 1e-6
    fb = torch.rand(4, 9, dtype=torch.double, generator=g)
    fb[0] = 1e-8  # a mel band under the floor
    spec.requires_grad_()
    assert torch.autograd.gradcheck(lambda s: compressed_term(s, compressed_parts(ref, 0.3, 1e-5), 0.3, 1e-5), (spec,))
    assert torch.autograd.gradcheck(lambda s: log_mel_l1(s, fb, log_mel(ref, fb, 1e-5, 1e-10), 1e-5, 1e-10), (spec,))
