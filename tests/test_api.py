"""The public API: round trips, honest file sizes, and strict refusal of malformed .rcq data."""

import io
import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import soundfile as sf
import torch

import rotcodec
from rotcodec import AudioError, Codec, CodecConfig, FormatError, api, models
from rotcodec.io.audio import read_audio
from rotcodec.io.container import FORMAT_VERSION, dumps, loads_gains, read_header


def make_model(config: CodecConfig, seed: int = 0) -> Codec:
    torch.manual_seed(seed)
    model = Codec(config)
    model.train()
    model(torch.randn(4, 1, 8000) * 0.1)  # k-means init of every stage
    return model.eval()


@pytest.fixture(scope="module")
def tiny() -> Codec:
    return make_model(CodecConfig.preset("tiny"))


@pytest.fixture(scope="module")
def model_path(tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    tiny.save(path)
    return path


@pytest.fixture(scope="module")
def clip(tiny) -> bytes:
    torch.manual_seed(5)
    return rotcodec.compress(torch.randn(1, 8000) * 0.1, 16000, tiny)


def header_of(data: bytes):
    return read_header(io.BytesIO(data))


def rewrite_header(data: bytes, **changes) -> bytes:
    """The same file as format 2 (the JSON header) with header fields (on-disk keys) changed and
    the header CRC fixed. (Format 3's binary fields are fuzzed in test_container.py.)"""
    data = dumps(*loads_gains(data), version=2)
    (n,) = struct.unpack("<I", data[5:9])
    obj = json.loads(data[9: 9 + n])
    obj.update(changes)
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return data[:5] + struct.pack("<I", len(raw)) + raw + struct.pack("<I", zlib.crc32(raw)) + data[9 + n + 4:]


# ----- round trips -------------------------------------------------------------------------------
@pytest.mark.parametrize("sample_rate,channels,length", [(16000, 1, 12345), (44100, 2, 30001)])
def test_round_trip_keeps_channels_rate_and_length(tiny, sample_rate, channels, length):
    torch.manual_seed(0)
    wav = torch.randn(channels, length) * 0.1
    data = rotcodec.compress(wav, sample_rate, tiny)
    out, sr = rotcodec.decompress(data, tiny)
    assert sr == sample_rate and out.shape == (channels, length) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    h = header_of(data)
    assert (h.channels, h.original_sample_rate, h.length, h.n_q) == (channels, sample_rate, length, tiny.n_q)
    assert h.model == "tiny@1" and h.model_hash == rotcodec.model.loading.weights_hash(tiny)


def test_numpy_and_1d_input(tiny):
    x = (np.random.default_rng(0).standard_normal(5000) * 0.1).astype(np.float64)
    data = rotcodec.compress(x, 16000, tiny)
    assert data == rotcodec.compress(torch.from_numpy(x).float()[None], 16000, tiny)
    out, sr = rotcodec.decompress(data, tiny)
    assert out.shape == (1, 5000) and sr == 16000


def test_kbps_picks_stages(tiny):
    x = torch.randn(1, 4000) * 0.1
    assert header_of(rotcodec.compress(x, 16000, tiny, kbps=0.8)).n_q == 2
    with pytest.warns(rotcodec.api.BitrateCapped, match="above this model's maximum for 1 channel .* capped at 1.6 kbps"):
        assert header_of(rotcodec.compress(x, 16000, tiny, kbps=100)).n_q == 4
    with pytest.raises(ValueError, match="below one stage"):
        rotcodec.compress(x, 16000, tiny, kbps=0.1)


def test_kbps_is_the_total_of_all_channels(tiny, tmp_path):
    """As Opus's --bitrate: stereo at 1.6 kbps is 0.8 kbps (2 stages of 0.4) a channel."""
    import warnings

    stereo = torch.randn(2, 4000) * 0.1
    assert header_of(rotcodec.compress(stereo, 16000, tiny, kbps=1.6)).n_q == 2
    assert header_of(rotcodec.compress(stereo, 16000, tiny, kbps=1.2)).n_q == 1
    assert rotcodec.encode(stereo, 16000, tiny, kbps=3.2).shape[:2] == (2, 4)
    src = tmp_path / "s.wav"
    sf.write(src, stereo.T.numpy(), 16000)
    assert rotcodec.compress_file(src, tmp_path / "s.rcq", tiny, kbps=2.4).n_q == 3
    assert rotcodec.encode(str(src), model=tiny, kbps=0.8).shape[:2] == (2, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the maximum itself is no cap
        assert header_of(rotcodec.compress(stereo, 16000, tiny, kbps=3.2)).n_q == 4
    with pytest.warns(rotcodec.api.BitrateCapped, match="for 2 channels .*capped at 3.2 kbps"):
        assert rotcodec.encode(stereo, 16000, tiny, kbps=4).shape[:2] == (2, 4)
    with pytest.raises(ValueError, match="below one stage a channel"):
        rotcodec.compress(stereo, 16000, tiny, kbps=0.6)
    assert rotcodec.api.stages_for_kbps(tiny, None, 2) == 4


def test_bad_audio_is_refused(tiny):
    with pytest.raises(AudioError):
        rotcodec.compress(torch.tensor([0.0, float("nan")]), 16000, tiny)
    with pytest.raises(AudioError):
        rotcodec.compress(torch.zeros(1, 0), 16000, tiny)
    with pytest.raises(AudioError, match="common divisor"):
        rotcodec.compress(torch.zeros(1, 100), 44101, tiny)
    with pytest.raises(ValueError):
        rotcodec.compress(torch.zeros(1, 100), 0, tiny)


def test_real_bitrate_of_10_s_is_within_3_percent():
    # The tiny preset's 1.6 kbps (2000 bytes for 10 s) cannot absorb the ~175-byte header within
    # 3 %, nor can 8 x 1024 codes (4 kbps, 3.5 %); 12 x 1024 codes is the speech16k bitrate, 6 kbps.
    model = make_model(CodecConfig.preset("tiny").with_updates(quantizer={"n_q": 12, "codebook_size": 1024}))
    torch.manual_seed(1)
    data = rotcodec.compress(torch.randn(1, 160000) * 0.1, 16000, model)
    real = len(data) * 8 / 10
    assert abs(real / model.bitrate(12) - 1) < 0.03, (real, model.bitrate(12))


# ----- malformed input ---------------------------------------------------------------------------
def test_truncated_flipped_and_foreign_data_raise_format_error(tiny, clip):
    bad = {
        "empty": b"",
        "truncated prefix": clip[:6],
        "truncated header": clip[:30],
        "truncated payload": clip[:-5],
        "trailing bytes": clip + b"\0",
        "wrong magic": b"RIFF" + clip[4:],
        "future version": clip[:4] + bytes([FORMAT_VERSION + 1]) + clip[5:],
        "header bit flip": clip[:20] + bytes([clip[20] ^ 0x04]) + clip[21:],
        "payload bit flip": clip[:-10] + bytes([clip[-10] ^ 0x01]) + clip[-9:],
    }
    for name, data in bad.items():
        with pytest.raises(FormatError):
            rotcodec.decompress(data, tiny)
    with pytest.raises(FormatError, match="newer rotcodec"):
        rotcodec.decompress(bad["future version"], tiny)
    with pytest.raises(TypeError):
        rotcodec.decompress("not bytes", tiny)


def test_absurd_sizes_are_refused_before_allocating(tiny, clip):
    h = header_of(clip)
    frames = 10**9  # 4e9 codes, 4 GB of payload promised by a 200-byte file
    huge = rewrite_header(clip, frames=frames, len=frames * tiny.hop_length)
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="truncated"):
            rotcodec.decompress(huge, tiny)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20
    # a length the codes cannot cover (e.g. a huge claim with few frames) is refused too
    for length in (10**12, h.length + 10 * tiny.hop_length, 0):
        with pytest.raises(FormatError):
            rotcodec.decompress(rewrite_header(clip, len=length), tiny)


def test_files_from_another_model_or_contradicting_it_are_refused(tiny, clip):
    other = make_model(CodecConfig.preset("tiny"), seed=1)
    with pytest.raises(FormatError, match="made by model 'tiny@1'"):
        rotcodec.decompress(clip, other)
    for changes, words in [({"sr": 24000}, "sample rate"), ({"bits": 9}, "bits"),
                           ({"n_q": 5}, "stages"), ({"fps": 75.0}, "frame rate")]:
        with pytest.raises(FormatError, match="contradicts the model.*" + words):
            rotcodec.decompress(rewrite_header(clip, **changes), tiny)
    with pytest.raises(FormatError, match="common divisor"):
        rotcodec.decompress(rewrite_header(clip, orig_sr=999983), tiny)


# ----- models ------------------------------------------------------------------------------------
def test_load_model_paths_names_and_default(tiny, model_path, tmp_path, monkeypatch, clip):
    assert rotcodec.load_model(model_path).config == tiny.config
    assert rotcodec.load_model(str(model_path)).config == tiny.config
    with pytest.raises(FileNotFoundError):
        rotcodec.load_model(tmp_path / "missing.pt")
    with pytest.raises(IsADirectoryError):
        rotcodec.load_model(tmp_path)
    for garbage in (b"hi\n", b"not a model at all", model_path.read_bytes()[:1000]):
        (tmp_path / "garbage.pt").write_bytes(garbage)
        with pytest.raises(FormatError):
            rotcodec.load_model(tmp_path / "garbage.pt")

    bundle = tmp_path / "pretrained"
    bundle.mkdir()
    monkeypatch.setattr(models, "_pretrained_dir", lambda: bundle)
    with pytest.raises(FileNotFoundError) as err:
        rotcodec.load_model()
    assert str(err.value) == api.NO_MODEL_MESSAGE
    with pytest.raises(FileNotFoundError, match="no model given"):
        rotcodec.decompress(clip)  # no model named by the file, no default

    tiny.save(bundle / "tiny.pt")
    assert api.bundled_models() == ["tiny"]
    assert rotcodec.load_model("tiny").config == tiny.config
    out, _ = rotcodec.decompress(clip)  # the header names a bundled model: used
    assert out.shape == (1, 8000)
    with pytest.raises(FileNotFoundError, match="bundled models: tiny"):
        rotcodec.load_model("speech")
    with pytest.raises(FileNotFoundError):
        rotcodec.load_model()  # no default.txt and no default.pt
    (bundle / "default.txt").write_text("# the default model\ntiny\n")
    assert rotcodec.load_model().config == tiny.config
    out, sr = rotcodec.decompress(rotcodec.compress(torch.zeros(1, 700), 16000))  # default model both ways
    assert out.shape == (1, 700) and sr == 16000


# ----- files -------------------------------------------------------------------------------------
def test_file_round_trip_equals_bytes_api(tiny, model_path, tmp_path):
    rng = np.random.default_rng(2)
    src = tmp_path / "in.flac"
    sf.write(src, (rng.standard_normal((22050, 2)) * 0.1).astype(np.float32), 44100, subtype="PCM_24")
    rcq, out = tmp_path / "x.rcq", tmp_path / "out.wav"
    h = rotcodec.compress_file(src, rcq, model_path, kbps=2.4)  # the file's total: 1.2 kbps a channel
    assert h.n_q == 3 and h.channels == 2
    wav, sr = read_audio(src)
    assert rcq.read_bytes() == rotcodec.compress(wav, sr, tiny, kbps=2.4)
    rotcodec.decompress_file(rcq, out, tiny)
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.frames) == (44100, 2, 22050)
    expected, _ = rotcodec.decompress(rcq.read_bytes(), tiny)
    got, _ = read_audio(out)
    assert np.abs(got - expected.numpy()).max() < 1e-4 + 1 / 32768  # 16-bit output


def test_decompress_file_loads_the_model_on_device(tiny, model_path, tmp_path, monkeypatch):
    rcq = tmp_path / "d.rcq"
    rcq.write_bytes(rotcodec.compress(np.zeros(4000, dtype=np.float32), 16000, tiny))
    devices = []
    real = models._load_file
    monkeypatch.setattr(models, "_CACHE", type(models._CACHE)())
    monkeypatch.setattr(models, "_load_file", lambda path, device: devices.append(str(device)) or real(path, device))
    header = rotcodec.decompress_file(rcq, tmp_path / "d.wav", model_path, device="cpu")
    assert devices == ["cpu"] and header.length == 4000
    with open(rcq, "rb") as f:  # a stream, too; the model loaded above is kept
        rotcodec.decompress_file(f, tmp_path / "e.wav", model_path, device=torch.device("cpu"))
    assert devices == ["cpu"]


def test_file_variants_never_overwrite_or_leave_partial_files(tiny, tmp_path, clip):
    src = tmp_path / "in.wav"
    sf.write(src, np.zeros(3000, dtype=np.float32), 16000)
    rcq = tmp_path / "x.rcq"
    rcq.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        rotcodec.compress_file(src, rcq, tiny)
    assert rcq.read_bytes() == b"keep me"
    rotcodec.compress_file(src, rcq, tiny, force=True)
    assert header_of(rcq.read_bytes()).length == 3000
    with pytest.raises(FileNotFoundError, match="folder does not exist"):
        rotcodec.compress_file(src, tmp_path / "no" / "x.rcq", tiny)

    nan = tmp_path / "nan.wav"
    data = np.zeros(40000, dtype=np.float32)
    data[-5] = np.nan
    sf.write(nan, data, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        rotcodec.compress_file(nan, tmp_path / "nan.rcq", tiny)
    bad = tmp_path / "bad.rcq"
    bad.write_bytes(clip[:-3])
    with pytest.raises(FormatError):
        rotcodec.decompress_file(bad, tmp_path / "bad.wav", tiny)
    with pytest.raises(AudioError, match="extension"):
        rotcodec.decompress_file(rcq, tmp_path / "x.mp3", tiny)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["bad.rcq", "in.wav", "nan.wav", "x.rcq"]  # no outputs, no temp files


def test_progress_bar_on_long_inputs(tiny, tmp_path, capsys, monkeypatch):
    from rotcodec.coding import progress

    src = tmp_path / "in.wav"
    sf.write(src, np.zeros(24000, dtype=np.float32), 16000)
    rotcodec.compress_file(src, tmp_path / "a.rcq", tiny, progress=True)
    assert capsys.readouterr().err == ""  # 1.5 s is not long
    monkeypatch.setattr(progress, "LONG_INPUT_SECONDS", 1.0)
    rotcodec.compress_file(src, tmp_path / "b.rcq", tiny, progress=True)
    rotcodec.decompress_file(tmp_path / "b.rcq", tmp_path / "b.wav", tiny, progress=True)
    err = capsys.readouterr().err
    assert "compress [" in err and "decompress [" in err and "100%" in err
