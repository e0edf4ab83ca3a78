"""Beam-search encoding: greedy at width 1, cheaper paths in sum as it widens, exact when the beam
holds every path, independent of how frames are grouped, and a model setting that saves, loads
and decodes."""

import itertools

import pytest
import torch

from rotcodec import Codec, CodecConfig, QuantizerConfig
from rotcodec.model.loading import load_model_file
from rotcodec.quantize import ResidualVQ
from rotcodec.quantize import search


def trained_rvq(n_q=4, k=32, dim=16, seed=0) -> ResidualVQ:
    torch.manual_seed(seed)
    rvq = ResidualVQ(dim, QuantizerConfig(n_q=n_q, codebook_size=k, code_dim=4, dropout=0.0, kmeans_iters=3))
    rvq(torch.randn(4, dim, 40))  # k-means init and one EMA update
    return rvq.eval()


@torch.no_grad()
def path_cost(rvq: ResidualVQ, z: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Summed code-space error ``[B, F]`` of the given code paths (what the search minimises)."""
    residual, total = z, torch.zeros(z.shape[0], z.shape[2])
    for i, layer in enumerate(rvq.layers[: codes.shape[1]]):
        e = layer.project(residual)  # [B, F, d]
        total = total + (e - layer.codewords()[codes[:, i]]).pow(2).sum(-1)
        residual = residual - layer.decode(codes[:, i])
    return total


def test_width_one_is_greedy_coding():
    rvq = trained_rvq()
    z = torch.randn(3, 16, 30)
    for n_q in (1, 2, 4):
        assert torch.equal(search.beam_codes(z, rvq.layers[:n_q], 1), rvq.encode(z, n_q))


def test_wider_beams_find_cheaper_paths():
    rvq = trained_rvq()
    z = torch.randn(2, 16, 60)
    totals = [float(path_cost(rvq, z, rvq.encode(z, 4, beam=w)).sum()) for w in (1, 2, 4, 16)]
    # Not for every frame (a beam can prune the greedy path's prefix), but in sum, and more so as
    # the beam widens.
    assert totals == sorted(totals, reverse=True) and totals[-1] < 0.95 * totals[0]


def test_a_beam_holding_every_path_finds_the_exact_optimum():
    k = 6
    rvq = trained_rvq(n_q=2, k=k)
    z = torch.randn(1, 16, 20)
    codes = rvq.encode(z, 2, beam=k)  # keeps all k first-stage codes: every one of the k^2 paths is weighed
    every = torch.tensor(list(itertools.product(range(k), repeat=2)))  # [k^2, 2]
    for f in range(z.shape[2]):
        frame = z[:, :, f: f + 1].expand(len(every), -1, -1)
        best = path_cost(rvq, frame, every[:, :, None]).squeeze(1).min()
        found = path_cost(rvq, z[:, :, f: f + 1], codes[:, :, f: f + 1])
        assert float(found) == pytest.approx(float(best), abs=1e-5)


def test_frames_are_searched_independently(monkeypatch):
    rvq = trained_rvq()
    z = torch.randn(2, 16, 25)
    whole = rvq.encode(z, 4, beam=4)
    pieces = torch.cat([rvq.encode(z[:, :, a: a + 7], 4, beam=4) for a in range(0, 25, 7)], dim=2)
    assert torch.equal(whole, pieces)
    monkeypatch.setattr(search, "BLOCK", 3)  # blocks that cut across batch items
    assert torch.equal(rvq.encode(z, 4, beam=4), whole)


def test_low_precision_model_gives_valid_codes():
    rvq = trained_rvq().to(torch.bfloat16)
    codes = rvq.encode(torch.randn(1, 16, 10, dtype=torch.bfloat16), 4, beam=3)
    assert codes.shape == (1, 4, 10) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 32


def test_bad_width_is_a_clear_error():
    with pytest.raises(ValueError, match="beam"):
        QuantizerConfig(beam=0)
    with pytest.raises(ValueError, match="beam must be >= 1"):
        search.beam_codes(torch.randn(1, 16, 4), trained_rvq().layers, 0)


def test_beam_is_an_encoding_setting_of_the_model(tmp_path):
    torch.manual_seed(0)
    model = Codec(CodecConfig.preset("tiny"))
    model.train()
    model(torch.randn(4, 1, 8000) * 0.1)
    model.eval()
    wav = torch.randn(1, 1, 4000) * 0.1
    greedy = model.encode(wav)
    searched = model.quantizer.encode(model.encoder(model._pad(wav)), beam=4)
    assert model.set_beam(4) is model
    assert model.config.quantizer.beam == 4 and model.quantizer.config is model.config.quantizer  # one setting
    assert torch.equal(model.encode(wav), searched)
    assert model.config == Codec(CodecConfig.preset("tiny")).config  # the beam is left out of equality
    path = tmp_path / "m.pt"
    model.save(path)
    loaded = load_model_file(path)
    assert loaded.config.quantizer.beam == 4
    assert torch.equal(loaded.encode(wav), searched)
    assert loaded.decode(searched).shape == loaded.decode(greedy).shape
    # A model file written before the setting existed (no "beam" key) encodes greedily.
    blob = model.config.to_dict()
    del blob["quantizer"]["beam"]
    assert CodecConfig.from_dict(blob).quantizer.beam == 1
    # One name at every level: the config field, the setter's and the encoders' argument.
    assert model.set_beam(beam=2).config.quantizer.beam == 2
    z = model.encoder(model._pad(wav))
    assert torch.equal(model.quantizer.encode(z, beam=4), search.beam_codes(z, model.quantizer.layers, beam=4))
    with pytest.raises(ValueError, match="quantizer.beam must be an integer >= 1"):
        model.set_beam(0)
