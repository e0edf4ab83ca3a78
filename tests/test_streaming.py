"""Push-based streaming coders equal one-piece coding, for both model families, with the stated latency."""

import copy

import numpy as np
import pytest
import torch

from rotcodec import Codec, CodecConfig, FormatError, StreamDecoder, StreamEncoder
from rotcodec.coding.conditioning import GAIN_FRAMES, apply_gains, condition


@pytest.fixture(scope="module", params=["tiny", "tiny_stft"])
def model(request) -> Codec:
    torch.manual_seed(0)
    m = Codec(CodecConfig.preset(request.param))
    m.train()
    m(torch.randn(4, 1, 8000) * 0.1)  # k-means init of every stage
    return m.eval()


def _sizes(total: int, high: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    out = []
    while sum(out) < total:
        out.append(int(rng.integers(1, high + 1)))
    return out


@pytest.mark.parametrize("pattern", ["one", "random", "all"])
def test_stream_decoder_equals_one_piece_decode(model, pattern):
    torch.manual_seed(1)
    frames, length = 41, 41 * model.hop_length - 77
    codes = torch.randint(0, model.config.quantizer.codebook_size, (2, 3, frames))
    ref = model.decode(codes, length)[:, 0]
    sizes = {"one": [1] * frames, "random": _sizes(frames, 6, 2), "all": [frames]}[pattern]
    dec = StreamDecoder(model)
    outs, f = [], 0
    for n in sizes:
        outs.append(dec.push(codes[..., f: f + n]))
        f += n
    outs.append(dec.flush(length))
    out = torch.cat(outs, dim=-1)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 1e-4


def test_stream_decoder_latency_is_the_decoder_context(model):
    ctx = model.decoder_context_frames()
    dec = StreamDecoder(model)
    assert dec.latency_frames == ctx
    assert dec.latency_ms == pytest.approx(ctx * model.hop_length / model.sample_rate * 1000)
    codes = torch.zeros(model.n_q, 1, dtype=torch.long)  # mono: [n_q, f] in, [n] out
    got = [dec.push(codes).shape[-1] for _ in range(ctx + 3)]
    # frame i's audio comes out with frame i + ctx: nothing for the first ctx pushes, then one frame each
    assert got == [0] * ctx + [model.hop_length] * 3
    assert dec.flush().shape == (ctx * model.hop_length,)
    with pytest.raises(RuntimeError, match="after flush"):
        dec.push(codes)


def test_stream_decoder_min_frames_batches_calls(model):
    codes = torch.randint(0, model.config.quantizer.codebook_size, (1, 2, 30))
    dec = StreamDecoder(model, min_frames=4)
    assert dec.latency_frames == model.decoder_context_frames() + 3
    sizes = [dec.push(codes[..., i: i + 1]).shape[-1] for i in range(30)]
    assert all(s in (0, 4 * model.hop_length) for s in sizes)
    out = torch.cat([torch.zeros(1, sum(sizes)), dec.flush()], dim=-1)
    assert out.shape[-1] == 30 * model.hop_length


def test_stream_decoder_rejects_bad_codes(model):
    dec = StreamDecoder(model)
    with pytest.raises(FormatError, match="outside the codebook"):
        dec.push(torch.full((1, 2, 1), model.config.quantizer.codebook_size))
    dec.push(torch.zeros(1, 2, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="differ from the first push"):
        dec.push(torch.zeros(1, 3, 1, dtype=torch.long))
    with pytest.raises(TypeError, match="integers"):
        StreamDecoder(model).push(torch.zeros(1, 2, 1))


@pytest.mark.parametrize("conditioned", [True, False])
def test_stream_encoder_exact_equals_one_piece_encode(model, conditioned):
    torch.manual_seed(3)
    wav = torch.randn(2, 137 * model.hop_length + 5) * 0.1 + 0.02  # 3 gain blocks, the last one short
    block = GAIN_FRAMES * model.hop_length
    signal, gains = condition(wav, block) if conditioned else (wav, None)
    whole = copy.deepcopy(model).double().encode(signal.double()[:, None], 3)
    enc = StreamEncoder(model, n_q=3, exact=True, condition=conditioned)
    parts, taken, i = [], [], 0
    for n in _sizes(wav.shape[-1], 700, 4):
        parts.append(enc.push(wav[:, i: i + n]))
        taken.append(enc.take_gains())
        # every frame's gain is out no later than the frame's code
        assert not conditioned or sum(g.shape[-1] for g in taken) * GAIN_FRAMES >= sum(p.shape[-1] for p in parts)
        i += n
    parts.append(enc.flush())
    taken.append(enc.take_gains())
    codes = torch.cat(parts, dim=-1)
    assert codes.shape == (2, 3, 138)
    assert torch.equal(codes, whole)
    if conditioned:
        assert torch.equal(torch.cat(taken, dim=-1), gains) and torch.equal(enc.gains, gains)
        assert gains.shape == (2, 3)
    else:
        assert enc.gains is None and all(g is None for g in taken) and enc.gain_frames == 0


def test_stream_encoder_latency_grows_by_up_to_one_gain_block(model):
    ctx, hop = model.encoder_context_frames(), model.hop_length
    enc = StreamEncoder(model)
    assert enc.latency_frames == ctx + GAIN_FRAMES - 1
    assert enc.latency_ms == pytest.approx((ctx + GAIN_FRAMES) * hop / model.sample_rate * 1000)
    torch.manual_seed(6)
    wav = torch.randn(3 * GAIN_FRAMES * hop) * 0.1
    out_at = []  # samples pushed when each frame's code came out
    for i in range(3 * GAIN_FRAMES):
        out_at += [(i + 1) * hop] * enc.push(wav[i * hop: (i + 1) * hop]).shape[-1]
    # a block's codes come out once the block is complete, as far as the context allows
    assert out_at[:GAIN_FRAMES - ctx] == [GAIN_FRAMES * hop] * (GAIN_FRAMES - ctx)
    waits = [t - f * hop for f, t in enumerate(out_at)]
    assert max(waits) == (enc.latency_frames + 1) * hop  # the documented worst case is reached


def test_stream_encoder_latency_and_float32_near_ties(model):
    ctx, hop = model.encoder_context_frames(), model.hop_length
    enc = StreamEncoder(model, condition=False)  # the raw model path: no gain block to wait for
    assert enc.latency_ms == pytest.approx((ctx + 1) * hop / model.sample_rate * 1000)
    torch.manual_seed(5)
    wav = torch.randn(30 * hop) * 0.1  # mono: [n] in, [n_q, f] out
    out = [enc.push(wav[i * hop: (i + 1) * hop]) for i in range(30)]
    # frame i's code comes out once frame i + ctx is complete
    assert [o.shape[-1] for o in out] == [0] * ctx + [1] * (30 - ctx)
    codes = torch.cat(out + [enc.flush()], dim=-1)
    whole = model.encode(wav[None, None])[0]
    assert codes.shape == whole.shape
    # float32: near-tie codes may flip (this random model is full of ties); most agree
    assert (codes == whole).float().mean() > 0.85


def test_stream_decoder_divides_the_encoders_gains_out(model):
    torch.manual_seed(7)
    wav = torch.randn(2, 130 * model.hop_length + 11) * 0.004 - 0.01  # quiet, with a DC offset
    block = GAIN_FRAMES * model.hop_length
    conditioned, gains = condition(wav, block)
    ref = apply_gains(model.decode(model.encode(conditioned[:, None]), wav.shape[-1])[:, 0], gains, block,
                      inverse=True)
    enc = StreamEncoder(model)
    dec = StreamDecoder(model, gain_frames=enc.gain_frames)
    outs = []
    for i in range(0, wav.shape[-1], 900):
        outs.append(dec.push(enc.push(wav[:, i: i + 900]), enc.take_gains()))
    outs.append(dec.push(enc.flush(), enc.take_gains()))
    outs.append(dec.flush(wav.shape[-1]))
    out = torch.cat(outs, dim=-1)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 1e-4 * ref.abs().max()  # float32 near-ties aside, see above
    # a decoder made for codes without gains (a language model's) refuses gains
    plain = StreamDecoder(model)
    assert plain.gain_frames == 0
    with pytest.raises(ValueError, match="without gain_frames"):
        plain.push(torch.zeros(2, 4, 1, dtype=torch.long), gains)


def test_stream_decoder_refuses_frames_before_their_gain(model):
    dec = StreamDecoder(model, gain_frames=2)
    dec.push(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 1, dtype=torch.int8))
    with pytest.raises(ValueError, match="before the gain"):
        dec.push(torch.zeros(1, 2, 1, dtype=torch.long))
    with pytest.raises(FormatError, match="gain code"):
        dec.push(torch.zeros(1, 2, 1, dtype=torch.long), torch.full((1, 1), 127, dtype=torch.int8))
    out = dec.push(torch.zeros(1, 2, 1, dtype=torch.long), torch.tensor([[-2]], dtype=torch.int8))
    assert torch.isfinite(out).all()
