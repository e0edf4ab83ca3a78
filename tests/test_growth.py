"""Growing a trained model by identity blocks (rotcodec.model.growth, ``train --init``)."""

import logging
from pathlib import Path

import pytest
import torch

from rotcodec import Codec, CodecConfig
from rotcodec.model.growth import grow_state
from rotcodec.train.config import load_recipe
from rotcodec.train.loop import _init_codec

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def _trained_tiny_stft() -> Codec:
    """A tiny STFT model whose layer scales are not small (a block that did nothing would hide a bug)."""
    torch.manual_seed(3)
    codec = Codec(CodecConfig.preset("tiny_stft"))
    with torch.no_grad():
        for name, p in codec.named_parameters():
            if name.endswith("gamma"):
                p.uniform_(0.5, 1.0)
    codec.train()
    codec(torch.randn(4, 1, 4000) * 0.1)  # k-means codebooks
    return codec.eval()


def _recipe(**model):
    sets = ['model.preset="tiny_stft"'] + [f"model.{k}={v}" for k, v in model.items()]
    return load_recipe(RECIPES / "tiny_cpu.toml", sets)


def test_grown_model_codes_and_decodes_the_same_at_step_0(caplog):
    old = _trained_tiny_stft()
    wav = torch.randn(2, 1, 3210) * 0.1
    codes = old.encode(wav)
    audio = old.decode(codes, wav.shape[-1])
    with caplog.at_level(logging.INFO, logger="rotcodec.train"):
        grown = _init_codec(old, _recipe(blocks=5)).eval()
    assert "grown by identity blocks: blocks 2 -> 5" in caplog.text
    assert len(grown.encoder.trunk.blocks) == 5 and len(grown.decoder.trunk.blocks) == 5
    assert sum(p.numel() for p in grown.parameters()) > sum(p.numel() for p in old.parameters())
    assert torch.equal(grown.encode(wav), codes)
    torch.testing.assert_close(grown.decode(codes, wav.shape[-1]), audio, rtol=0, atol=1e-6)
    # The new blocks are real blocks: only their layer scale is 0, so one step moves them.
    new_block = grown.decoder.trunk.blocks[4]
    assert torch.equal(new_block.gamma, torch.zeros_like(new_block.gamma)) and new_block.pw1.weight.abs().sum() > 0
    grown.train()
    out = grown(wav)
    out.wav.pow(2).mean().backward()
    assert new_block.gamma.grad.abs().sum() > 0


def test_growth_and_quantizer_surgery_together():
    old = _trained_tiny_stft()
    wav = torch.randn(1, 1, 2000) * 0.1
    grown = _init_codec(old, _recipe(blocks=3, **{"quantizer.codebook": '"simvq"'})).eval()
    assert grown.config.quantizer.codebook == "simvq" and grown.config.blocks == 3
    assert torch.equal(grown.encode(wav), old.encode(wav))


@pytest.mark.parametrize("change", [{"blocks": 1}, {"width": 48}])
def test_what_cannot_grow_is_refused(change):
    with pytest.raises(ValueError, match="shrink|width"):
        _init_codec(_trained_tiny_stft(), _recipe(**change))


def test_seanet_models_do_not_grow_by_blocks():
    cfg = CodecConfig.preset("tiny")
    with pytest.raises(ValueError, match="STFT"):
        grow_state({}, cfg, cfg, {})
