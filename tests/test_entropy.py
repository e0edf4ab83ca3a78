"""Entropy coding (rotcodec.entropy): the range coder, the integer context model, coded .rcq files.

A tiny context model is fitted here (no corpus); the bundled one is used where it ships."""

import io
import random
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from rotcodec.entropy import bundled
from rotcodec.entropy.coder import RangeDecoder, RangeEncoder
from rotcodec.entropy.fit import ContextNet, FitConfig, calibration, fit, quantise
from rotcodec.entropy.model import IntContextModel, SequentialTables, load_context_model
from rotcodec.entropy.payload import decode_codes, encode_codes, iter_decode
from rotcodec.errors import FormatError
from rotcodec.io.container import PAYLOAD_ENTROPY, Header, dumps, loads, read_header

CFG = FitConfig(codebook_size=32, stages=4, prev_frames=2, width=8, minutes=10.0, steps=150, batch_size=64,
                valid_every=10**9)


def _arrays(n=6, frames=60, seed=0):
    """Code arrays [F, S] with structure a context model can learn (slow random walks)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        walk = np.cumsum(rng.integers(-1, 2, size=(frames, CFG.stages)), axis=0)
        out.append((walk % CFG.codebook_size).astype(np.int16))
    return out


@pytest.fixture(scope="module")
def tiny() -> IntContextModel:
    torch.manual_seed(0)
    train = _arrays()
    net = fit(train, [], CFG, log=lambda *_: None)
    ctx, n_q = calibration(train, CFG, n=256)
    return quantise(net, ctx, n_q, codec="tiny@1", codec_hash="0123456789abcdef")


# ----- range coder -------------------------------------------------------------------------------
def test_range_coder_round_trips_random_tables():
    rng = np.random.default_rng(1)
    for _ in range(40):
        K, n = int(rng.integers(1, 40)), int(rng.integers(0, 200))
        tables = [np.concatenate([[0], np.cumsum(rng.integers(1, int(rng.choice([2, 300, 2**20])), K))])
                  for _ in range(n)]
        symbols = [int(rng.integers(K)) for _ in range(n)]
        enc = RangeEncoder()
        for cum, s in zip(tables, symbols):
            enc.encode(int(cum[s]), int(cum[s + 1] - cum[s]), int(cum[-1]))
        data = enc.finish()
        dec = RangeDecoder(data)
        assert [dec.decode(cum[1:]) for cum in tables] == symbols
        dec.finish()


def test_range_coder_spends_the_ideal_bits():
    enc = RangeEncoder()
    cum = np.array([0, 1, 2**20])  # symbol 1 has probability 1 - 2**-20
    for _ in range(10_000):
        enc.encode(1, 2**20 - 1, 2**20)
    assert len(enc.finish()) <= 9  # 10k symbols of ~1.4e-6 bits each, plus the flush
    with pytest.raises(ValueError):
        RangeEncoder().encode(0, 0, 4)  # a zero frequency cannot be coded
    assert cum[-1] == 2**20


def test_range_decoder_terminates_on_garbage():
    rng = random.Random(0)
    cum = np.cumsum(np.arange(1, 1025))
    for _ in range(200):
        dec = RangeDecoder(rng.randbytes(rng.randrange(0, 64)))
        try:
            for _ in range(100):
                assert 0 <= dec.decode(cum) < 1024
            dec.finish()
        except FormatError:
            pass


def test_range_coder_drops_at_most_max_stripped_zeros_and_reads_no_further():
    """A run of first symbols leaves ``low`` unchanged, so the stream ends in zero bytes: the
    encoder drops only MAX_STRIPPED of them, the decoder reads at most 7 + MAX_STRIPPED past the
    end of any data (a header that promises more codes than the bytes hold ends in FormatError,
    not in a long decode), and appended zero bytes are refused."""
    from rotcodec.entropy.coder import MAX_STRIPPED

    enc = RangeEncoder()
    enc.encode(5, 3, 8)
    for _ in range(400):
        enc.encode(0, 1, 2)  # one bit each, all zero
    data = enc.finish()
    assert data.endswith(b"\0")  # more zeros were written than dropped
    dec = RangeDecoder(data)
    assert [dec.decode(np.array([5, 8]) if i == 0 else np.array([1, 2])) for i in range(401)] == [1] + [0] * 400
    dec.finish()
    with pytest.raises(FormatError):
        dec = RangeDecoder(data + b"\0")
        [dec.decode(np.array([5, 8]) if i == 0 else np.array([1, 2])) for i in range(401)]
        dec.finish()
    dec = RangeDecoder(b"")
    with pytest.raises(FormatError, match="ends before its codes"):
        for _ in range(10_000):
            dec.decode(np.array([1, 2]))
    assert dec.pos <= 7 + MAX_STRIPPED + 1


def test_a_header_promising_more_codes_than_the_payload_holds_is_refused_at_once(tiny):
    with pytest.raises(FormatError, match="cannot hold"):
        decode_codes(tiny, b"\x01", 1, 4, 10**6)


# ----- the integer model -------------------------------------------------------------------------
def test_parallel_and_sequential_tables_are_identical(tiny):
    rng = np.random.default_rng(2)
    for C, n_q, F in [(1, 4, 40), (2, 3, 25), (3, 1, 7), (1, 2, 1)]:
        codes = rng.integers(0, 32, size=(C, n_q, F))
        parallel = tiny.tables(codes)
        parts = np.concatenate([tiny.tables(codes, f0, f0 + 3) for f0 in range(0, F, 3)], axis=2)
        assert (parts == parallel).all()  # blocks of frames give the same tables
        seq = SequentialTables(tiny, C, n_q)
        for f in range(F):
            for s in range(n_q):
                assert (seq.next_tables() == parallel[:, s, f]).all()
                seq.push(codes[:, s, f])
        assert parallel.min() >= 1


def test_float64_products_equal_exact_integer_products(tiny):
    """The matrix products run in float64 BLAS; at the largest activations they still equal int64 ones."""
    m, a = tiny.meta, tiny.arrays
    act = np.full((3, m["D"]), m["A"], dtype=np.int64)
    act[1] = np.random.default_rng(3).integers(0, m["A"] + 1, m["D"])
    for s in range(m["S"]):
        for w in (a["w1"][s], a["wo"][s]):
            exact = act @ w.astype(np.int64).T  # integer matmul: no rounding at all
            assert (np.asarray(act, np.float64) @ w.astype(np.float64).T).astype(np.int64).tolist() == exact.tolist()


def test_tables_do_not_depend_on_torch_threads(tiny):
    codes = np.random.default_rng(4).integers(0, 32, size=(2, 4, 30))
    before = torch.get_num_threads()
    try:
        out = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out.append((tiny.tables(codes), encode_codes(tiny, codes)))
    finally:
        torch.set_num_threads(before)
    assert (out[0][0] == out[1][0]).all() and out[0][1] == out[1][1]


def test_model_file_round_trips_without_pickle(tiny, tmp_path):
    path = tmp_path / "tiny.entropy.npz"
    tiny.save(path)
    again = load_context_model(path)
    assert again.digest == tiny.digest and again.meta == tiny.meta
    with np.load(path, allow_pickle=False) as z:
        assert all(z[name].dtype != object for name in z.files)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatError):
        load_context_model(tmp_path / "junk.npz")
    bad = dict(tiny.arrays, lut=np.zeros(3, dtype=np.int64))
    with pytest.raises(FormatError, match="lookup"):
        IntContextModel(tiny.meta, bad)
    huge = dict(tiny.arrays, mo=tiny.arrays["mo"] * 2**40)
    with pytest.raises(FormatError, match="too large"):
        IntContextModel(tiny.meta, huge)


# ----- payloads ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 4, 50), (2, 3, 20), (1, 1, 1), (3, 2, 0)])
def test_random_codes_round_trip(tiny, shape):
    codes = np.random.default_rng(sum(shape)).integers(0, 32, size=shape)
    data = encode_codes(tiny, codes)
    assert (decode_codes(tiny, data, *shape) == codes).all()
    assert [f.tolist() for f in iter_decode(tiny, data, *shape)] == [codes[:, :, f].tolist() for f in range(shape[2])]


def test_learned_structure_takes_fewer_bits(tiny):
    codes = np.stack([a[:, :4].T for a in _arrays(n=1, frames=200, seed=9)])  # [1, 4, 200]
    noise = np.random.default_rng(5).integers(0, 32, size=codes.shape)
    assert len(encode_codes(tiny, codes)) < 0.9 * len(encode_codes(tiny, noise))
    assert abs(tiny.code_bits(codes).sum() / 8 - len(encode_codes(tiny, codes))) < 10


def test_garbage_payloads_raise_format_error_or_decode(tiny):
    rng = random.Random(6)
    for _ in range(100):
        data = rng.randbytes(rng.randrange(0, 40))
        try:
            codes = decode_codes(tiny, data, 1, 4, 10)
            assert codes.min() >= 0 and codes.max() < 32
        except FormatError:
            pass


# ----- the container ----------------------------------------------------------------------------
def _header(tiny, **kw):
    fields = dict(model="tiny@1", model_hash="0123456789abcdef", sample_rate=16000, original_sample_rate=16000,
                  channels=2, n_q=3, bits=5, frame_rate=50.0, frames=40, length=12800,
                  coding=PAYLOAD_ENTROPY, context_model="tiny.entropy", context_hash=tiny.digest)
    fields.update(kw)
    return Header(**fields)


def test_entropy_coded_rcq_round_trips_with_the_model_given(tiny):
    h = _header(tiny)
    codes = np.random.default_rng(7).integers(0, 32, size=(2, 3, 40))
    data = dumps(h, codes, context_model=tiny)
    assert read_header(io.BytesIO(data)) == h
    h2, codes2 = loads(data, context_model=tiny)
    assert h2 == h and (codes2 == codes).all()
    plain = dumps(Header(**{**h.__dict__, "coding": 0, "context_model": "", "context_hash": ""}), codes)
    assert len(plain) < len(data) + 40  # random codes: no gain, little loss
    # the model's own context model is named by a zero length; another by its id
    own = len(dumps(h, np.zeros((2, 3, 40), dtype=np.int64), context_model=tiny))
    h3 = _header(tiny, context_model="another.entropy")
    data3 = dumps(h3, np.zeros((2, 3, 40), dtype=np.int64), context_model=tiny)
    assert len(data3) == own + len("another.entropy") and loads(data3, context_model=tiny)[0] == h3


def test_entropy_coded_rcq_decodes_with_the_bundled_model_and_names_a_missing_one(tiny, tmp_path, monkeypatch):
    h = _header(tiny, channels=1, n_q=4)
    codes = np.stack([a.T for a in _arrays(n=1, frames=40, seed=3)])
    data = dumps(h, codes, context_model=tiny)
    monkeypatch.setattr(bundled, "_folder", lambda: tmp_path)
    with pytest.raises(FormatError, match="context model 'tiny.entropy'.*does not have"):
        loads(data)
    tiny.save(tmp_path / "tiny.entropy.npz")
    assert (loads(data)[1] == codes).all()
    with pytest.raises(FormatError, match="not with the one given"):
        dumps(_header(tiny, channels=1, n_q=4, context_hash="ffff"), codes, context_model=tiny)
    assert bundled.for_codec("tiny")[1].digest == tiny.digest
    assert bundled.for_codec("other") is None
    assert bundled.has("tiny") and not bundled.has("other")
    IntContextModel({**tiny.meta, "codec": "other@1"}, tiny.arrays).save(tmp_path / "tiny.entropy.npz")
    with pytest.raises(FormatError, match="another version"):
        loads(data)
    tiny.save(tmp_path / f"tiny.entropy.{tiny.digest}.npz")  # a refit keeps the version it replaced
    assert (loads(data)[1] == codes).all()
    assert bundled.for_codec("tiny")[1].digest != tiny.digest  # new files code with the refit


def test_entropy_header_checks(tiny):
    with pytest.raises(FormatError, match="context_model"):
        _header(tiny, context_model="")
    with pytest.raises(FormatError, match="context_model"):
        Header(**{**_header(tiny).__dict__, "coding": 0})
    with pytest.raises(FormatError, match="coding"):
        _header(tiny, coding=7)
    with pytest.raises(ValueError, match="format 2"):
        dumps(_header(tiny), np.zeros((2, 3, 40), dtype=np.int64), version=2, context_model=tiny)


def test_damaged_entropy_files_raise_format_error(tiny):
    codes = np.random.default_rng(8).integers(0, 32, size=(2, 3, 40))
    data = dumps(_header(tiny), codes, context_model=tiny)
    rng = random.Random(9)
    for _ in range(300):
        raw = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        if rng.random() < 0.3:
            raw = raw[: rng.randrange(len(raw))]
        try:
            h, got = loads(bytes(raw), context_model=tiny)
        except FormatError:
            continue
        assert got.shape == codes.shape


# ----- through the API ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def codec_with_context(model_path):
    """The tiny test codec, and a context model for its codes registered as ``tiny.entropy``."""
    import rotcodec
    from rotcodec.model.loading import weights_hash

    codec = rotcodec.load_model(model_path)
    q = codec.config.quantizer
    cfg = FitConfig(codebook_size=q.codebook_size, stages=codec.n_q, prev_frames=2, width=8)
    torch.manual_seed(0)
    codes = [np.random.default_rng(i).integers(0, q.codebook_size, (30, codec.n_q)).astype(np.int16) for i in range(4)]
    ctx, n_q = calibration(codes, cfg, n=256)
    model = quantise(ContextNet(cfg).eval(), ctx, n_q, codec="tiny@1", codec_hash=weights_hash(codec))
    bundled.register("tiny.entropy", model)
    yield codec, model
    bundled.unregister("tiny.entropy")


def test_codes_survive_threads_and_float64_encoding(codec_with_context):
    """The entropy coder depends only on the integer codes: whatever torch computed them with
    (1 or 2 threads, float32 or float64), the file decodes to exactly those codes."""
    import rotcodec

    codec, ctx = codec_with_context
    wav = (0.1 * np.random.default_rng(10).standard_normal((2, 16000))).astype(np.float32)
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            data = rotcodec.compress(wav, 16000, codec, entropy=True)
            header, codes = loads(data)
            assert header.coding == PAYLOAD_ENTROPY and header.context_model == "tiny.entropy"
            assert (codes == rotcodec.encode(wav, 16000, codec)).all()
            assert torch.equal(rotcodec.decompress(data, codec)[0], rotcodec.decompress(
                rotcodec.compress(wav, 16000, codec), codec)[0])
    finally:
        torch.set_num_threads(before)
    codes64, gains = rotcodec.encode(wav, 16000, codec, exact=True, return_gains=True)
    header = loads(data)[0]
    again = loads(dumps(header, codes64, gains, context_model=ctx))[1]
    assert (again == codes64).all()


def test_entropy_coded_payload_streams_frame_by_frame(codec_with_context):
    """Streaming decode of an entropy-coded file: each frame the range decoder hands out goes
    straight into a StreamDecoder, and the audio equals decoding all codes at once."""
    import rotcodec
    from rotcodec.io.container import read_header

    codec, ctx = codec_with_context
    wav = (0.1 * np.random.default_rng(11).standard_normal((1, 12000))).astype(np.float32)
    data = rotcodec.compress(wav, 16000, codec, kbps=None, entropy=True, condition=False)
    f = io.BytesIO(data)
    header = read_header(f)
    codes = loads(data)[1]
    payload = data[f.tell():-4]  # no gains (condition=False): the payload, then its CRC
    dec = rotcodec.StreamDecoder(codec)
    pieces = [dec.push(torch.from_numpy(frame[:, :, None])) for frame in
              iter_decode(ctx, payload, header.channels, header.n_q, header.frames)]
    streamed = torch.cat(pieces + [dec.flush()], dim=-1)
    whole = codec.decode(torch.from_numpy(codes))
    assert torch.allclose(streamed, whole[..., : streamed.shape[-1]].reshape(streamed.shape), atol=1e-5)
    assert streamed.shape[-1] == header.frames * codec.hop_length


def test_entropy_needs_a_context_model_for_the_codec(model_path):
    import rotcodec
    from rotcodec.config import CodecConfig
    from rotcodec.model.codec import Codec

    import dataclasses

    torch.manual_seed(1)
    config = dataclasses.replace(CodecConfig.preset("tiny"), name="no-context-model")
    other = Codec(config).eval()  # a codec name no context model is registered or bundled for
    with pytest.raises(ValueError, match="no context model"):
        rotcodec.compress(np.zeros(1600, dtype=np.float32), 16000, other, entropy=True)


# ----- the bundled context model ------------------------------------------------------------------
def test_bundled_model_entropy_coded_files_decode_to_the_same_audio(tmp_path, capsys):
    """``rotcodec compress --entropy`` with the bundled model: fewer bytes, the same codes and audio,
    decoded without options; ``info`` names the context model."""
    import rotcodec
    from rotcodec.cli import main
    from rotcodec.io.audio import read_audio, write_audio

    clip = tmp_path / "clip.wav"
    wav, sr = read_audio("samples/speech_en.wav")
    write_audio(clip, wav[:, : 2 * sr], sr)
    plain, coded = tmp_path / "plain.rcq", tmp_path / "coded.rcq"
    assert main(["compress", str(clip), str(plain), "--kbps", "6", "-q"]) == 0
    assert main(["compress", str(clip), str(coded), "--kbps", "6", "--entropy", "-q"]) == 0
    assert coded.stat().st_size < plain.stat().st_size
    h1, c1 = loads(plain.read_bytes())
    h2, c2 = loads(coded.read_bytes())
    assert (c1 == c2).all() and h2.coding == PAYLOAD_ENTROPY and h2.context_model == "stft16k-cpu.entropy"
    a, _ = rotcodec.decompress(plain.read_bytes())
    b, _ = rotcodec.decompress(coded.read_bytes())
    assert torch.equal(a, b)
    capsys.readouterr()
    assert main(["info", str(coded)]) == 0
    assert "entropy-coded with context model stft16k-cpu.entropy" in capsys.readouterr().out


def test_bundled_context_models_code_all_their_models_stages():
    """``compress --entropy`` works with the bundled default, and with every bundled model that has a
    context model, at every bitrate: it codes the model's codebook and all its stages."""
    import rotcodec
    from rotcodec.models import list_models

    listed = {m.name: m for m in list_models()}
    assert listed["stft16k-cpu"].entropy and "--entropy" in listed["stft16k-cpu"].line()
    for name in [n for n, m in listed.items() if m.entropy]:
        model = rotcodec.load_model(name)
        found = bundled.for_codec(model.config.name)
        assert found is not None and found[0] == f"{name}.entropy"
        assert found[1].codebook_size == model.config.quantizer.codebook_size
        assert found[1].max_stages >= model.config.quantizer.n_q
        wav = (0.1 * np.random.default_rng(0).standard_normal((1, model.sample_rate // 2))).astype(np.float32)
        plain, coded = (rotcodec.compress(wav, model.sample_rate, model, entropy=e) for e in (False, True))
        assert (loads(plain)[1] == loads(coded)[1]).all() and loads(coded)[0].context_model == f"{name}.entropy"


def _fixture_codes() -> np.ndarray:
    """The codes of ``tests/data/v4_entropy_long.rcq`` (see tests/data/README.md): ``[1, 3, 8]``."""
    f, s = np.meshgrid(np.arange(8), np.arange(3))
    return ((37 * f + 101 * s) % 1024)[None]


def test_a_known_context_model_is_a_number_and_the_long_form_of_older_files_still_reads():
    """Format 4 names a bundled context model by its number in KNOWN_CONTEXT_MODELS (flag 0x40): 5
    bytes fewer than its id and hash. A file written before that short form (the long form) reads
    the same, and rewriting it gives the short form."""
    from rotcodec.io.container import KNOWN_CONTEXT_MODELS

    old = Path(__file__).parent.joinpath("data", "v4_entropy_long.rcq").read_bytes()
    h, codes = loads(old)
    assert (codes == _fixture_codes()).all() and not old[5] & 0x40
    assert (h.context_model, h.context_hash) == KNOWN_CONTEXT_MODELS[0] == ("stft16k-cpu.entropy", "0d7424fc")
    new = dumps(h, codes)
    assert new[5] == old[5] | 0x40 and len(new) == len(old) - 5 and new[:5] == old[:5]
    assert loads(new)[0] == h and (loads(new)[1] == codes).all()
    number = new.index(bytes.fromhex("8150317d9ae164e7")) + 8  # the byte after the weights hash
    end = number + 2  # the payload size, one varint byte (under 128 bytes)
    assert new[number] == 1 and new[number + 1] == len(new) - end - 8

    def with_crc(head: bytes) -> bytes:  # a changed header with its CRC recomputed
        return head + zlib.crc32(head).to_bytes(4, "little") + new[end + 4:]

    assert with_crc(new[:end]) == new
    for bad in (0, len(KNOWN_CONTEXT_MODELS) + 1, 255):
        with pytest.raises(FormatError, match=f"context model number {bad} .*upgrade rotcodec"):
            loads(with_crc(new[:number] + bytes([bad]) + new[number + 1:end]))
    with pytest.raises(FormatError, match="header CRC"):
        loads(new[:number] + b"\x02" + new[number + 1:])
    # the flag on a bit-packed file: not its one encoding
    plain = dumps(Header(**{**h.__dict__, "coding": 0, "context_model": "", "context_hash": ""}), codes)
    head = plain[:5] + bytes([plain[5] | 0x40]) + plain[6:number]
    with pytest.raises(FormatError, match="one encoding"):
        loads(head + zlib.crc32(head).to_bytes(4, "little") + plain[number + 4:])


def test_every_bundled_context_model_has_a_number():
    from rotcodec.io.container import KNOWN_CONTEXT_MODELS

    shipped = set()
    for path in Path(bundled.__file__).parents[1].joinpath("pretrained").glob("*.entropy*.npz"):
        ctx_id, _, digest = bundled.model_id(path).partition(".entropy")  # <codec>.entropy[.<hash>]
        shipped.add((ctx_id + ".entropy", bundled.load(path).digest))
        assert digest in ("", "." + bundled.load(path).digest)
    assert shipped and shipped <= set(KNOWN_CONTEXT_MODELS)
    assert KNOWN_CONTEXT_MODELS[:2] == (("stft16k-cpu.entropy", "0d7424fc"), ("audio24k-cpu.entropy", "12149b41"))


def test_fit_without_token_files_is_a_clear_error(tmp_path, capsys):
    from rotcodec.entropy.fit import main

    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[entropy]\ntrain_tokens = ["{tmp_path / "none"}"]\nstages = 16\n')
    with pytest.raises(SystemExit) as err:
        main([str(recipe), "--out", str(tmp_path / "m.npz")])
    assert err.value.code == 2 and "no token files of 16 or more stages" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()
