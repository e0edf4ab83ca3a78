"""Audio file I/O: round trips, formats, one-line AudioErrors, and safe atomic writes."""

import numpy as np
import pytest
import soundfile as sf
import torch

from rotcodec.errors import AudioError
from rotcodec.io.audio import (
    AudioWriter, audio_info, iter_audio_blocks, read_audio, resample, to_tensor_2d, write_audio,
)

SR = 16000


def signal(channels: int, n: int = 4000, amp: float = 0.5) -> np.ndarray:
    """A distinct sine per channel, float32 [C, T]."""
    t = np.arange(n) / SR
    return np.stack([amp * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)]).astype(
        np.float32
    )


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("ext", [".wav", ".flac"])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_round_trip(tmp_path, ext, channels):
    wav = signal(channels)
    path = tmp_path / f"a{ext}"
    write_audio(path, torch.from_numpy(wav), SR)
    out, sr = read_audio(path)
    assert sr == SR and out.dtype == np.float32 and out.shape == wav.shape
    np.testing.assert_allclose(out, wav, atol=1 / 2**15 + 1e-6)  # PCM_16 quantisation
    assert audio_info(path) == (SR, channels, wav.shape[1])
    assert leftovers(tmp_path) == []


def test_mono_1d_numpy_and_float_subtype(tmp_path):
    wav = signal(1)[0] * 3  # beyond +-1: kept by FLOAT, clipped by PCM
    write_audio(tmp_path / "f.wav", wav, SR, subtype="FLOAT")
    out, _ = read_audio(tmp_path / "f.wav")
    np.testing.assert_array_equal(out[0], wav)
    write_audio(tmp_path / "p.wav", wav, SR)
    out, _ = read_audio(tmp_path / "p.wav")
    assert out.max() <= 1.0 and out.min() >= -1.0 and out.max() > 0.99


def test_ogg_write_and_read(tmp_path):
    write_audio(tmp_path / "a.ogg", signal(2, 8000), SR)
    out, sr = read_audio(tmp_path / "a.ogg")
    assert sr == SR and out.shape[0] == 2 and abs(out.shape[1] - 8000) < 100


@pytest.mark.parametrize("subtype,atol", [("PCM_U8", 1 / 64), ("PCM_24", 1e-6), ("FLOAT", 0)])
def test_read_subtypes(tmp_path, subtype, atol):
    wav = signal(2)
    path = tmp_path / "x.wav"
    sf.write(path, wav.T, SR, subtype=subtype)
    out, sr = read_audio(path)
    assert sr == SR and out.dtype == np.float32 and out.shape == wav.shape
    np.testing.assert_allclose(out, wav, atol=atol + 1e-7)


def test_float_wav_beyond_unity_is_returned(tmp_path):
    sf.write(tmp_path / "loud.wav", np.array([[0.0], [2.5], [-3.0]], np.float32), SR, subtype="FLOAT")
    out, _ = read_audio(tmp_path / "loud.wav")
    np.testing.assert_array_equal(out, [[0.0, 2.5, -3.0]])


def test_read_errors(tmp_path):
    cases = {}
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty.wav"] = "not a readable audio file"
    sf.write(tmp_path / "zero.wav", np.zeros((0, 1), np.float32), SR)
    cases["zero.wav"] = "no samples"
    sf.write(tmp_path / "nan.wav", np.array([[0.1], [np.nan], [0.2]], np.float32), SR, subtype="FLOAT")
    cases["nan.wav"] = "NaN or infinite"
    (tmp_path / "text.wav").write_text("this is not audio\n" * 20)
    cases["text.wav"] = "not a readable audio file"
    (tmp_path / "dir.wav").mkdir()
    cases["dir.wav"] = "is a directory"
    cases["missing.wav"] = "no such file"
    for name, message in cases.items():
        with pytest.raises(AudioError, match=message) as info:
            read_audio(tmp_path / name)
        assert "\n" not in str(info.value)
        if name != "nan.wav":  # info does not read samples
            with pytest.raises(AudioError, match=message):
                audio_info(tmp_path / name)
        with pytest.raises(AudioError, match=message):
            list(iter_audio_blocks(tmp_path / name, 100))


def test_unreadable_file(tmp_path, monkeypatch):
    import rotcodec.io.audio as audio_mod

    path = tmp_path / "secret.wav"
    write_audio(path, signal(1), SR)

    def deny(*args, **kwargs):  # chmod 0 is no use when the tests run as root
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(audio_mod, "open", deny, raising=False)
    with pytest.raises(AudioError, match="cannot read .*Permission denied"):
        read_audio(path)


def test_iter_audio_blocks(tmp_path):
    wav = signal(3, 1050)
    write_audio(tmp_path / "b.flac", wav, SR)
    blocks = list(iter_audio_blocks(tmp_path / "b.flac", 256))
    assert [b.shape for b in blocks] == [(3, 256)] * 4 + [(3, 26)]
    assert all(b.dtype == np.float32 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), read_audio(tmp_path / "b.flac")[0])
    with pytest.raises(ValueError):
        iter_audio_blocks(tmp_path / "b.flac", 0)


def test_to_tensor_2d():
    t = to_tensor_2d(np.zeros(5, np.float64))
    assert t.shape == (1, 5) and t.dtype == torch.float32
    assert to_tensor_2d(torch.zeros(2, 7, dtype=torch.float16)).dtype == torch.float32
    assert to_tensor_2d(torch.zeros(2, 7)).shape == (2, 7)
    with pytest.raises(ValueError):
        to_tensor_2d(torch.zeros(1, 2, 3))
    with pytest.raises(ValueError):
        to_tensor_2d(np.zeros(5, np.int16))
    with pytest.raises(AudioError, match="empty"):
        to_tensor_2d(np.zeros((2, 0), np.float32))
    with pytest.raises(AudioError, match="NaN"):
        to_tensor_2d(torch.tensor([0.0, float("inf")]))
    with pytest.raises(TypeError):
        to_tensor_2d([0.0, 1.0])


@pytest.mark.parametrize("orig,new", [(16000, 24000), (44100, 16000), (48000, 24000)])
def test_resample_length(orig, new):
    wav = torch.randn(2, orig // 2)
    out = resample(wav, orig, new)
    assert out.shape[0] == 2
    assert abs(out.shape[1] - wav.shape[1] * new / orig) <= 1
    assert resample(wav, orig, orig) is wav
    with pytest.raises(ValueError):
        resample(wav, 0, new)


def test_write_refuses_overwrite_unless_forced(tmp_path):
    path = tmp_path / "o.wav"
    write_audio(path, signal(1), SR)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="force"):
        write_audio(path, signal(2), SR)
    assert path.read_bytes() == before
    write_audio(path, signal(2), SR, force=True)
    assert audio_info(path)[1] == 2
    assert leftovers(tmp_path) == []


def test_write_errors(tmp_path):
    with pytest.raises(AudioError, match="folder does not exist"):
        write_audio(tmp_path / "nope" / "a.wav", signal(1), SR)
    with pytest.raises(AudioError, match="unsupported audio extension"):
        write_audio(tmp_path / "a.mp4", signal(1), SR)
    with pytest.raises(AudioError, match="subtype"):
        write_audio(tmp_path / "a.flac", signal(1), SR, subtype="FLOAT")
    (tmp_path / "d.wav").mkdir()
    with pytest.raises(AudioError, match="directory"):
        write_audio(tmp_path / "d.wav", signal(1), SR, force=True)
    with pytest.raises(AudioError):
        write_audio(tmp_path / "n.wav", np.full((1, 10), np.nan, np.float32), SR)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.wav"]


def test_failed_write_leaves_no_temp_and_keeps_old_file(tmp_path):
    path = tmp_path / "a.flac"
    # libsndfile refuses this rate for FLAC only once the (temp) file is opened.
    with pytest.raises(AudioError, match="cannot write"):
        write_audio(path, signal(1), 1_000_000)
    assert list(tmp_path.iterdir()) == []
    write_audio(path, signal(1), SR)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        with AudioWriter(path, SR, channels=1, force=True) as w:
            w.write(signal(1))
            raise RuntimeError("boom")
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_audio_writer_blocks(tmp_path):
    wav = signal(2, 3000)
    path = tmp_path / "w.wav"
    with AudioWriter(path, SR, channels=2) as w:
        for start in range(0, 3000, 700):
            w.write(torch.from_numpy(wav[:, start:start + 700]))
        assert not path.exists()  # only appears once complete
        with pytest.raises(ValueError, match="channels"):
            w.write(wav[:1])
    out, _ = read_audio(path)
    np.testing.assert_allclose(out, wav, atol=1 / 2**15 + 1e-6)
    with pytest.raises(FileExistsError):
        AudioWriter(path, SR, channels=2)
