"""VectorQuantizer and ResidualVQ: lookups, losses, codebook care, dropout, gradient routes."""

import copy

import pytest
import torch

from rotcodec import QuantizerConfig
from rotcodec.quantize import ResidualVQ, VectorQuantizer


def qcfg(**kw) -> QuantizerConfig:
    base = dict(n_q=4, codebook_size=32, code_dim=4, dropout=0.0, kmeans_iters=3)
    base.update(kw)
    return QuantizerConfig(**base)


def latents(b=4, d=16, f=25, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, f, generator=g)


@pytest.mark.parametrize("codebook", ["ema", "loss", "simvq"])
@pytest.mark.parametrize("normalize", [False, True])
def test_vq_forward_is_codebook_lookup(codebook, normalize):
    torch.manual_seed(0)
    vq = VectorQuantizer(16, qcfg(codebook=codebook, normalize=normalize))
    x = latents()
    vq(x)  # first training batch: k-means init
    before = copy.deepcopy(vq)  # training updates the codebook after the lookup
    res = vq(x)
    assert res.quantized.shape == x.shape and res.codes.shape == (4, 25)
    assert res.codes.dtype == torch.int64
    # training mode: the forward value equals the lookup of the chosen codes to float32 precision
    assert torch.allclose(res.quantized, before.decode(res.codes), atol=1e-6)
    vq.eval()
    res = vq(x)
    assert torch.equal(res.quantized, vq.decode(res.codes))
    assert torch.equal(res.codes, vq.encode(x))
    assert set(res.losses) == {"vq/commit", "vq/codebook"}
    assert set(res.metrics) == {"usage", "perplexity", "lambda", "obtuse", "qerr", "qerr_rel"}


def test_codes_are_nearest_codewords():
    torch.manual_seed(1)
    vq = VectorQuantizer(16, qcfg(kmeans_init=False)).eval()
    x = latents()
    e = vq.project(x).reshape(-1, 4)
    brute = torch.cdist(e.double(), vq.codewords().double()).argmin(-1)
    assert torch.equal(vq.encode(x).reshape(-1), brute)


def test_kmeans_init_on_first_training_batch_only():
    torch.manual_seed(2)
    vq = VectorQuantizer(16, qcfg(codebook="ema"))
    before = vq.embed.clone()
    assert not bool(vq.initialized)
    vq(latents())
    assert bool(vq.initialized)
    after_first = vq.embed.clone()
    assert not torch.equal(before, after_first)
    vq.eval()
    vq(latents(seed=3))
    assert torch.equal(vq.embed, after_first)  # eval never changes the codebook


def test_ema_moves_codewords_towards_their_vectors():
    torch.manual_seed(3)
    vq = VectorQuantizer(16, qcfg(codebook="ema", kmeans_init=False, dead_code_threshold=0.0, ema_decay=0.5))
    x = latents()
    errs = []
    for _ in range(10):
        errs.append(vq(x).metrics["qerr"].item())
    assert errs[-1] < 0.7 * errs[0]


def test_codebook_loss_trains_the_codebook_only_in_loss_mode():
    torch.manual_seed(4)
    vq = VectorQuantizer(16, qcfg(codebook="loss", kmeans_init=False))
    res = vq(latents())
    assert res.losses["vq/codebook"].item() > 0
    res.losses["vq/codebook"].backward()
    assert vq.embed.grad is not None and vq.embed.grad.abs().sum() > 0
    ema = VectorQuantizer(16, qcfg(codebook="ema"))
    assert ema(latents()).losses["vq/codebook"].item() == 0
    assert not isinstance(ema.embed, torch.nn.Parameter)


def test_simvq_codewords_are_a_frozen_codebook_through_one_learned_map():
    torch.manual_seed(6)
    vq = VectorQuantizer(16, qcfg(codebook="simvq", kmeans_init=False))
    assert not isinstance(vq.embed, torch.nn.Parameter)  # C is frozen
    assert torch.equal(vq.codewords(), vq.embed)  # W starts as the identity
    with torch.no_grad():
        vq.embed_map.weight.copy_(torch.randn(4, 4))
    assert torch.allclose(vq.codewords(), vq.embed @ vq.embed_map.weight.T)
    res = vq(latents())
    res.losses["vq/codebook"].backward()  # the codebook loss trains W, and so every codeword
    assert res.losses["vq/codebook"].item() > 0 and vq.embed_map.weight.grad.abs().sum() > 0
    # the rotated output carries no gradient to W: only the codebook loss moves it
    vq.zero_grad()
    vq(latents()).quantized.sum().backward()
    assert vq.embed_map.weight.grad is None or vq.embed_map.weight.grad.abs().sum() == 0


def test_simvq_dead_codes_are_revived_through_the_map():
    torch.manual_seed(7)
    vq = VectorQuantizer(16, qcfg(codebook="simvq", kmeans_init=False, dead_code_threshold=0.05, dead_code_decay=0.5))
    with torch.no_grad():
        vq.embed_map.weight.copy_(torch.randn(4, 4) + 2 * torch.eye(4))
        vq.embed.fill_(100.0)
        vq.embed[0].zero_()
    x = latents(b=8, f=50)
    for _ in range(5):
        vq(x)
    vq.eval()
    assert vq(x).metrics["usage"].item() > 0.5
    # revived codewords are encoder vectors: their code-space error is that of real data, not 100s
    assert vq(x).metrics["qerr"].item() < 1.0


def test_dead_code_replacement_revives_unused_codes():
    torch.manual_seed(5)
    x = latents(b=8, f=50)

    def usage_after(threshold: float) -> float:
        torch.manual_seed(5)
        vq = VectorQuantizer(16, qcfg(codebook="loss", kmeans_init=False, dead_code_threshold=threshold,
                                      dead_code_decay=0.5))
        with torch.no_grad():  # every code far away except one: a collapsed codebook
            vq.embed.fill_(100.0)
            vq.embed[0].zero_()
        vq.eval()
        start = vq(x).metrics["usage"].item()
        vq.train()
        for _ in range(5):
            vq(x)
        vq.eval()
        return start, vq(x).metrics["usage"].item()

    start, without = usage_after(0.0)
    assert start == pytest.approx(1 / 32) and without == pytest.approx(1 / 32)
    _, revived = usage_after(0.05)
    assert revived > 0.5


def test_metrics_on_known_codes():
    vq = VectorQuantizer(4, qcfg(codebook="loss", kmeans_init=False, code_dim=4)).eval()
    res = vq(latents(d=4))
    m = res.metrics
    used = res.codes.unique().numel()
    assert m["usage"].item() == pytest.approx(used / 32)
    assert 1.0 <= m["perplexity"].item() <= used + 1e-4
    assert 0.0 <= m["obtuse"].item() <= 1.0
    e = vq.project(latents(d=4)).reshape(-1, 4)
    q = vq.codewords()[res.codes.reshape(-1)]
    assert m["qerr"].item() == pytest.approx((e - q).pow(2).sum(-1).mean().item(), rel=1e-5)
    assert m["qerr_rel"].item() == pytest.approx(m["qerr"].item() / e.pow(2).sum(-1).mean().item(), rel=1e-5)


def test_silent_input_gives_finite_outputs_and_gradients():
    torch.manual_seed(6)
    rvq = ResidualVQ(16, qcfg(estimator="rotation"))
    z = torch.zeros(2, 16, 10, requires_grad=True)
    res = rvq(z)
    loss = res.quantized.pow(2).mean() + sum(res.losses.values())
    loss.backward()
    assert torch.isfinite(res.quantized).all() and torch.isfinite(z.grad).all()
    assert all(torch.isfinite(v).all() for v in res.metrics.values())


@pytest.mark.parametrize("route", ["detached", "chained"])
def test_rvq_eval_decode_of_encode_equals_forward(route):
    torch.manual_seed(7)
    rvq = ResidualVQ(16, qcfg(residual_route=route))
    z = latents()
    rvq(z)  # one training step: k-means init and EMA updates
    rvq.eval()
    for n_q in (1, 2, 4):
        res = rvq(z, n_q)
        codes = rvq.encode(z, n_q)
        assert codes.shape == (4, n_q, 25)
        assert torch.equal(codes, res.codes)
        assert torch.equal(rvq.decode(codes), res.quantized)


def test_rvq_residual_error_falls_with_more_stages():
    torch.manual_seed(8)
    rvq = ResidualVQ(16, qcfg(n_q=4, codebook_size=64))
    z = latents(b=8, f=50)
    opt = torch.optim.Adam(rvq.parameters(), lr=1e-2)
    for _ in range(30):  # train the projections so each stage really codes the residual
        res = rvq(z)
        loss = (res.quantized - z).pow(2).mean() + res.losses["vq/commit"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    rvq.eval()
    errs = [(rvq.decode(rvq.encode(z, n)) - z).pow(2).mean().item() for n in (1, 2, 3, 4)]
    assert errs == sorted(errs, reverse=True)


def test_quantizer_dropout_varies_n_q_per_item():
    torch.manual_seed(9)
    rvq = ResidualVQ(16, qcfg(n_q=6, dropout=1.0))
    res = rvq(latents(b=64))
    assert res.n_active.min() >= 1 and res.n_active.max() <= 6
    assert res.n_active.unique().numel() >= 4
    assert rvq(latents(b=64), 3).n_active.max() <= 3  # dropout stays within the requested n_q
    rvq.eval()
    assert rvq(latents(b=64)).n_active.unique().tolist() == [6]  # no dropout in eval


def test_dropout_masks_stage_outputs():
    torch.manual_seed(10)
    rvq = ResidualVQ(16, qcfg(n_q=4, dropout=1.0, kmeans_init=False, dead_code_threshold=0.0,
                              codebook="loss"))
    z = latents(b=16)
    res = rvq(z)
    rvq.eval()
    for i in range(16):
        n = int(res.n_active[i])
        expected = rvq.decode(res.codes[i : i + 1, :n])
        assert torch.allclose(res.quantized[i : i + 1], expected, atol=1e-5)


def encoder_grad(estimator: str, route: str, n_q: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(11)
    rvq = ResidualVQ(16, qcfg(n_q=n_q, estimator=estimator, residual_route=route, kmeans_init=False))
    z = latents().requires_grad_(True)
    g = torch.randn_like(z)
    res = rvq(z)
    res.quantized.backward(g)
    return z.grad, g


def test_rotation_and_ste_give_the_encoder_different_gradients():
    g_rot, _ = encoder_grad("rotation", "detached")
    g_ste, _ = encoder_grad("ste", "detached")
    assert (g_rot - g_ste).norm() > 0.05 * g_ste.norm()


def test_detached_route_sums_stage_gradients_chained_does_not():
    """With identity projections, STE + detached route gives n_q * g; chained gives g."""
    torch.manual_seed(12)
    for route, factor in (("detached", 4.0), ("chained", 1.0)):
        rvq = ResidualVQ(4, qcfg(n_q=4, code_dim=4, estimator="ste", residual_route=route, kmeans_init=False))
        for layer in rvq.layers:  # make in/out projections the identity
            for proj in (layer.in_proj, layer.out_proj):
                proj.parametrizations.weight.original1.data = torch.eye(4)[:, :, None].clone()
                proj.parametrizations.weight.original0.data = torch.ones(4, 1, 1)
                proj.bias.data.zero_()
        z = latents(d=4).requires_grad_(True)
        g = torch.randn_like(z)
        rvq(z).quantized.backward(g)
        assert torch.allclose(z.grad, factor * g, atol=1e-5), route


def test_n_q_out_of_range_is_a_clear_error():
    rvq = ResidualVQ(16, qcfg(n_q=4))
    with pytest.raises(ValueError, match="n_q"):
        rvq.encode(latents(), 5)
    with pytest.raises(ValueError, match="codes must be in"):
        rvq.decode(torch.full((1, 2, 3), 32))


def test_simvq_trains_saves_and_reloads_in_a_codec(tmp_path):
    from rotcodec import Codec, CodecConfig
    from rotcodec.model.loading import load_model_file

    torch.manual_seed(8)
    cfg = CodecConfig.preset("tiny")
    cfg = cfg.with_updates(quantizer={"codebook": "simvq"})
    model = Codec(cfg)
    model.train()
    model(torch.randn(2, 1, 8000) * 0.1)
    model.eval().save(tmp_path / "m.pt")
    back = load_model_file(tmp_path / "m.pt").eval()
    x = torch.randn(1, 1, 8000) * 0.1
    assert torch.equal(model.encode(x), back.encode(x))
    assert any(k.endswith("embed_map.weight") for k in back.state_dict())


@pytest.mark.parametrize("old_book", ["ema", "loss", "simvq"])
@pytest.mark.parametrize("new_book", ["ema", "loss", "simvq"])
def test_quantizer_surgery_keeps_codes_and_decoding(old_book, new_book):
    from rotcodec import Codec, CodecConfig
    from rotcodec.quantize.surgery import carry_state

    torch.manual_seed(3)
    cfg = CodecConfig.preset("tiny").with_updates(quantizer={"codebook": old_book, "dropout": 0.0})
    old = Codec(cfg).train()
    for _ in range(2):  # k-means init, then a codebook update (EMA moves, dead codes revive)
        old(torch.randn(2, 1, 8000) * 0.1)
    if old_book == "simvq":  # a map that is not the identity, so the carried codewords are C W^T
        with torch.no_grad():
            for layer in old.quantizer.layers:
                layer.embed_map.weight.add_(0.1 * torch.randn_like(layer.embed_map.weight))
    new_cfg = cfg.with_updates(quantizer={"codebook": new_book, "estimator": "ste", "dropout": 0.5})
    new = Codec(new_cfg)
    new.load_state_dict(carry_state(old.state_dict(), cfg.quantizer, new_cfg.quantizer))
    old.eval(), new.eval()
    x = torch.randn(1, 1, 8000) * 0.1
    codes = old.encode(x)
    assert torch.equal(new.encode(x), codes)
    assert torch.allclose(new.decode(codes, 8000), old.decode(codes, 8000), atol=1e-5)
    for a, b in zip(old.quantizer.layers, new.quantizer.layers):
        assert torch.allclose(a.codewords(), b.codewords(), atol=1e-6)
        if new_book == "simvq" and old_book != "simvq":  # the same codebook kind passes through as it is
            assert torch.equal(b.embed_map.weight, torch.eye(b.embed.shape[1]))
        if new_book == "ema":  # the running sum matches the codewords, so the first EMA step keeps them
            assert torch.allclose(b.embed_avg / b.cluster_size[:, None], b.embed, atol=1e-5)
    # the carried model trains on: a step moves the codewords it should move
    new.train()
    new(torch.randn(2, 1, 8000) * 0.1)


def test_quantizer_surgery_refuses_a_new_code_space():
    from rotcodec.quantize.surgery import carry_state, unbridgeable

    assert unbridgeable(["quantizer.codebook", "quantizer.estimator", "quantizer.n_q", "hop_length"]) == [
        "quantizer.n_q", "hop_length"]
    for change in ({"code_dim": 8}, {"codebook_size": 64}, {"normalize": True}, {"n_q": 2}):
        with pytest.raises(ValueError, match="code space"):
            carry_state({}, qcfg(), qcfg(**change))
