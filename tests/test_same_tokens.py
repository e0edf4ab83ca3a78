"""The same tokens however you ask: on the real clips in samples/, the codes of a file are identical
whether it is coded whole, in chunks of any size, in a batch with files of other lengths, streamed
block by block, through the API or through ``rotcodec tokenize``; for both model families. The
encode paths condition their input (rotcodec.coding.conditioning): the API, tokenize and the
StreamEncoder do it themselves; the model-rate coders (chunked, batched) are given the signal
:func:`condition` made of the whole clip, and it all comes to the same codes and gains.

Identity is promised in the exact (float64) mode. In float32 a near-tie code may flip with the
shape of the computation (see rotcodec.coding.chunks); the random tiny models here are full of
exact ties (duplicate codewords), so float32 is only checked to decode to nearly the same audio.
"""

import copy
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import rotcodec
from rotcodec import Codec, CodecConfig, StreamEncoder
from rotcodec.cli import main
from rotcodec.coding import encode_batch, encode_chunked, resample_stream
from rotcodec.coding.conditioning import GAIN_FRAMES, condition
from rotcodec.tokenize import read_manifest
from rotcodec.tokens import load_codes, load_gains

SAMPLES = sorted((Path(__file__).resolve().parent.parent / "samples").glob("*.wav"))


@pytest.fixture(scope="module", params=["tiny", "tiny_stft"])
def saved(request, tmp_path_factory) -> tuple[Codec, str]:
    torch.manual_seed(0)
    model = Codec(CodecConfig.preset(request.param))
    model.train()
    model(torch.randn(4, 1, 8000) * 0.1)
    path = tmp_path_factory.mktemp("model") / f"{request.param}.pt"
    model.eval().save(path)
    return rotcodec.load_model(path), str(path)


def _read(path: Path) -> tuple[torch.Tensor, int]:
    wav, sr = sf.read(path, dtype="float32", always_2d=True)
    return torch.from_numpy(wav.T.copy()), sr


def _model_rate(path: Path, sample_rate: int) -> torch.Tensor:
    x, sr = _read(path)
    return torch.cat(list(resample_stream([x], x.shape[-1], sr, sample_rate)), dim=-1)


def _streamed(model: Codec, wav: torch.Tensor, seed: int, exact: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codes, gains)`` of ``wav`` pushed in random pieces through a conditioning StreamEncoder."""
    enc = StreamEncoder(model, exact=exact)
    rng = np.random.default_rng(seed)
    parts, gains, i = [], [], 0
    while i < wav.shape[-1]:
        n = int(rng.integers(1, 3000))
        parts.append(enc.push(wav[:, i: i + n]))
        gains.append(enc.take_gains())
        i += n
    parts.append(enc.flush())
    gains.append(enc.take_gains())
    return torch.cat(parts, dim=-1), torch.cat(gains, dim=-1)


def _conditioned(model: Codec, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return condition(wav, GAIN_FRAMES * model.hop_length)


def test_samples_are_real_clips():
    assert len(SAMPLES) >= 4
    assert {sf.info(p).samplerate for p in SAMPLES} >= {16000, 24000}  # one clip is resampled


def test_exact_codes_identical_whole_chunked_batched_streamed(saved):
    model, _ = saved
    raw = [_model_rate(p, model.sample_rate) for p in SAMPLES]
    conditioned = [_conditioned(model, wav) for wav in raw]
    wavs = [wav for wav, _ in conditioned]
    double = copy.deepcopy(model).double()
    batched = encode_batch(model, wavs, exact=True)  # all clips, of different lengths, in one batch
    for i, (path, wav, (_, gains)) in enumerate(zip(SAMPLES, wavs, conditioned)):
        whole = double.encode(wav.double()[:, None])  # one piece
        assert whole.shape[-1] == -(-wav.shape[-1] // model.hop_length)
        assert gains.shape == (wav.shape[0], -(-whole.shape[-1] // GAIN_FRAMES))
        for chunk in (7, 64) if i else (1, 7, 64):  # chunks of one frame on the first clip only (slow)
            assert torch.equal(encode_chunked(model, wav, chunk_frames=chunk, exact=True), whole), (path, chunk)
        assert torch.equal(batched[i], whole), path
        streamed, streamed_gains = _streamed(model, raw[i], i, exact=True)
        assert torch.equal(streamed, whole) and torch.equal(streamed_gains, gains), path
        codes, api_gains = rotcodec.encode(path, model=model, exact=True, return_gains=True)
        assert np.array_equal(codes, whole.numpy()) and np.array_equal(api_gains, gains.numpy()), path
        data = rotcodec.compress(*_read(path), model)  # the .rcq holds the same codes and gains
        _, file_codes, file_gains = rotcodec.io.loads_gains(data)
        assert (file_codes == codes).mean() > 0.8 and np.array_equal(file_gains, api_gains), path  # float32


def test_float32_ways_decode_to_nearly_the_same_audio(saved):
    model, _ = saved
    raw = [_model_rate(p, model.sample_rate) for p in SAMPLES[:2]]
    wavs = [_conditioned(model, wav)[0] for wav in raw]
    batched = encode_batch(model, wavs)
    for i, wav in enumerate(wavs):
        whole = model.encode(wav[:, None])
        ref = model.decode(whole)
        ways = [encode_chunked(model, wav, chunk_frames=7), batched[i], _streamed(model, raw[i], i, exact=False)[0]]
        for codes in ways:
            assert codes.shape == whole.shape
            assert (codes == whole).float().mean() > 0.8
            err = (model.decode(codes) - ref).pow(2).mean()
            assert err < 0.05 * ref.pow(2).mean()


def test_tokenize_cli_gives_the_same_codes_in_both_formats(saved, tmp_path):
    model, path = saved
    for fmt in ("rcq", "npy"):
        out = tmp_path / fmt
        assert main(["tokenize", str(SAMPLES[0].parent), str(out), "--model", path, "--format", fmt,
                     "--exact", "-q"]) == 0
        manifest = read_manifest(out)
        assert sorted(manifest) == [p.name for p in SAMPLES]
        for p in SAMPLES:
            codes = load_codes(out / manifest[p.name]["tokens"])
            gains, _ = load_gains(out / manifest[p.name]["tokens"], manifest[p.name])
            api_codes, api_gains = rotcodec.encode(p, model=model, exact=True, return_gains=True)
            assert np.array_equal(codes, api_codes) and np.array_equal(gains, api_gains), (fmt, p)
