"""Issue 39: one meaning of kbps at every entry, one code check at every decoder, models found and
loaded in one place (and loaded once per file), beam an argument of encoding."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

import rotcodec
from rotcodec import FormatError, models
from rotcodec.bitrate import BitrateCapped, stages_for_kbps
from rotcodec.cli import main
from rotcodec.coding.streaming import StreamDecoder
from rotcodec.io.container import loads

# The tiny model: 4 stages of 0.4 kbps a channel. A stereo file at 1.6 kbps in all: 2 stages a channel.
STEREO_KBPS, STEREO_STAGES = 1.6, 2


@pytest.fixture(scope="module")
def tiny(model_path):
    return rotcodec.load_model(model_path)


@pytest.fixture
def stereo(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "set"
    folder.mkdir()
    wav = (rng.standard_normal((8000, 2)) * 0.1).astype(np.float32)
    sf.write(folder / "s.wav", wav, 16000)
    return folder / "s.wav", wav.T.copy()


def test_one_conversion_counts_every_channel(tiny):
    assert [stages_for_kbps(tiny, 1.6, c) for c in (1, 2, 4)] == [4, 2, 1]
    assert tiny.n_q_for_kbps(1.2) == stages_for_kbps(tiny, 1.2, 1) == 3  # a bare model codes one mono signal
    with pytest.warns(BitrateCapped):
        assert tiny.n_q_for_kbps(50) == 4
    with pytest.raises(ValueError, match="below one stage a channel"):
        stages_for_kbps(tiny, 1.2, 4)


def test_every_api_entry_reads_kbps_as_the_files_total(tiny, model_path, stereo, tmp_path):
    path, wav = stereo
    assert loads(rotcodec.compress(wav, 16000, model_path, kbps=STEREO_KBPS))[0].n_q == STEREO_STAGES
    assert rotcodec.compress_file(path, tmp_path / "a.rcq", model_path, kbps=STEREO_KBPS).n_q == STEREO_STAGES
    assert rotcodec.encode(wav, 16000, model_path, kbps=STEREO_KBPS).shape[:2] == (2, STEREO_STAGES)
    assert rotcodec.encode(str(path), model=model_path, kbps=STEREO_KBPS).shape[:2] == (2, STEREO_STAGES)
    from rotcodec.conditions import coders_for
    from rotcodec.evaluate import evaluate

    coders = coders_for(tiny, [STEREO_KBPS], [])
    decoded, size = next(iter(coders.values()))(wav, 16000)
    assert decoded.shape == wav.shape and size == len(rotcodec.compress(wav, 16000, tiny, kbps=STEREO_KBPS))
    score = evaluate(tiny, [path], [STEREO_KBPS])[0]
    assert len(score.usage) == STEREO_STAGES and score.name == f"rotcodec {STEREO_KBPS:g} kbps"
    from rotcodec.tokenize import read_manifest, tokenize_folder

    tokenize_folder(path.parent, tmp_path / "tok", model_path, kbps=STEREO_KBPS)
    assert read_manifest(tmp_path / "tok")["s.wav"]["n_q"] == STEREO_STAGES


def test_every_command_reads_kbps_as_the_files_total(model_path, stereo, tmp_path, monkeypatch, capsys):
    path, _ = stereo
    monkeypatch.chdir(tmp_path)
    k = str(STEREO_KBPS)
    assert main(["compress", str(path), "c.rcq", "--model", model_path, "--kbps", k, "-q"]) == 0
    assert loads((tmp_path / "c.rcq").read_bytes())[0].n_q == STEREO_STAGES
    assert main(["roundtrip", str(path), "r.wav", "--model", model_path, "--kbps", k]) == 0
    assert f"{STEREO_STAGES} stages" in capsys.readouterr().out
    assert main(["tokenize", str(path.parent), "tok", "--model", model_path, "--kbps", k, "-q"]) == 0
    assert json.loads((tmp_path / "tok" / "manifest.jsonl").read_text().splitlines()[0])["n_q"] == STEREO_STAGES
    assert main(["eval", "--data", str(path.parent), "--model", model_path, "--kbps", k, "--json", "e.json"]) == 0
    assert len(json.loads((tmp_path / "e.json").read_text())[0]["usage"]) == STEREO_STAGES
    capsys.readouterr()
    assert main(["report", str(path), "p.html", "--model", model_path, "--kbps", k, "-q"]) == 0
    assert f"rotcodec {STEREO_KBPS:g} kbps" in (tmp_path / "p.html").read_text()
    from rotcodec.bench import bench_api

    assert bench_api(rotcodec.load_model(model_path), 0.2, [0.8], 1)[0]["kbps"] == 0.8  # one mono clip: its total


def test_a_model_path_is_loaded_once_for_200_files(model_path, monkeypatch):
    loads_seen = []
    real = models._load_file
    monkeypatch.setattr(models, "_CACHE", type(models._CACHE)())
    monkeypatch.setattr(models, "_load_file", lambda path, device: loads_seen.append(path) or real(path, device))
    wav = np.zeros(400, dtype=np.float32)
    for i in range(200):
        data = rotcodec.compress(wav + i * 1e-4, 16000, model_path, kbps=0.8)
    rotcodec.decompress(data, model_path)
    rotcodec.encode(wav, 16000, model_path)
    assert len(loads_seen) == 1
    assert rotcodec.load_model(model_path) is not rotcodec.load_model(model_path)  # yours to change


def test_a_rewritten_model_file_is_loaded_again(tiny, tmp_path):
    path = tmp_path / "m.pt"
    tiny.save(path)
    first = models.resolve(path)
    assert models.resolve(path) is first
    tiny.save(path)
    os.utime(path, ns=(1, 1))  # a new modification time: a new version of the file
    assert models.resolve(path) is not first


def test_models_are_listed_from_their_files_and_one_line_each(tiny, tmp_path, monkeypatch, capsys):
    bundle = tmp_path / "pretrained"
    bundle.mkdir()
    monkeypatch.setattr(models, "_pretrained_dir", lambda: bundle)
    tiny.save(bundle / "tiny-a.pt")
    tiny.save(bundle / "tiny-b.pt")
    (bundle / "models.txt").write_text("# comment\ntiny-a: for tests\n")
    (bundle / "default.txt").write_text("tiny-b\n")
    infos = models.list_models()
    assert [i.name for i in infos] == ["tiny-a", "tiny-b"] and [i.default for i in infos] == [False, True]
    a = infos[0]
    assert (a.sample_rate, a.channels, a.stages, a.kbps, a.about) == (16000, 1, 4, (0.4, 1.6), "for tests")
    assert "no description" in infos[1].about
    assert main(["models"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("tiny-a: 16 kHz, mono, 0.4-1.6 kbps") and out[1].startswith("tiny-b (default)")


BAD_CODES = [
    (lambda k: [[0, 1]], TypeError),  # not an array
    (lambda k: torch.zeros(1, 2, 3), TypeError),  # floats
    (lambda k: torch.zeros(1, 2, 3, dtype=torch.bool), TypeError),
    (lambda k: torch.zeros(1, 1, 2, 3, dtype=torch.long), FormatError),  # 4 axes
    (lambda k: torch.zeros(1, 9, 3, dtype=torch.long), FormatError),  # more stages than the model's 4
    (lambda k: torch.full((1, 2, 3), -1), FormatError),
    (lambda k: torch.full((1, 2, 3), k), FormatError),  # outside the codebook
]


@pytest.mark.parametrize("make, error", BAD_CODES)
def test_the_same_bad_codes_raise_the_same_error_at_every_entry(tiny, make, error):
    k = tiny.config.quantizer.codebook_size
    entries = {
        "rotcodec.decode": lambda c: rotcodec.decode(c, model=tiny),
        "StreamDecoder.push": lambda c: StreamDecoder(tiny).push(c),
        "Codec.decode": lambda c: tiny.decode(c),
    }
    for name, entry in entries.items():
        with pytest.raises(error):
            entry(make(k))
        if name != "Codec.decode" and isinstance(make(k), torch.Tensor):  # the same codes as numpy
            with pytest.raises(error):
                entry(make(k).numpy())


def test_decode_takes_the_order_of_compress_and_encode(tiny):
    codes = rotcodec.encode(np.zeros((1, 1600), dtype=np.float32), 16000, tiny)
    new = rotcodec.decode(codes, 16000, tiny)
    assert torch.equal(new, rotcodec.decode(codes, sample_rate=16000, model=tiny))
    for old_call in (lambda: rotcodec.decode(codes, tiny, 16000), lambda: rotcodec.decode(codes, tiny, sample_rate=16000)):
        with pytest.warns(DeprecationWarning, match="decode\\(codes, sample_rate, model\\)"):
            assert torch.equal(old_call(), new)  # the order before 0.2: still works, with a warning
    with pytest.raises(TypeError, match="multiple values"):
        rotcodec.decode(codes, 16000, sample_rate=16000)


def test_beam_is_an_argument_of_encoding_and_leaves_the_model_alone(tiny):
    wav = torch.from_numpy((np.random.default_rng(1).standard_normal(4000) * 0.1).astype(np.float32))
    default_beam = tiny.config.quantizer.beam
    greedy = rotcodec.encode(wav, 16000, tiny, beam=1, exact=True)
    searched = rotcodec.encode(wav, 16000, tiny, beam=3, exact=True)
    assert tiny.config.quantizer.beam == default_beam  # nothing set on the model
    assert not np.array_equal(greedy, searched)
    with pytest.raises(ValueError, match="beam must be an integer >= 1"):
        rotcodec.compress(wav, 16000, tiny, beam=0)


# ----- one wording of each message, for the API or the command line --------------------------------
def test_errors_that_name_an_option_word_it_for_each_reader_without_rewriting(model_path, stereo, tmp_path, capsys):
    import pickle

    from rotcodec.errors import CLI, OtherModel, OutputExists, worded
    from rotcodec.files import check_output

    # A path that holds the API's words must come out as it is: nothing is rewritten by replacement.
    taken = tmp_path / "model=PATH force=True.rcq"
    taken.write_bytes(b"old")
    with pytest.raises(FileExistsError) as err:
        check_output(taken, force=False)
    assert isinstance(err.value, OutputExists)
    assert str(err.value) == f"{taken} already exists; use force=True to overwrite it"
    assert worded(err.value, CLI) == f"{taken} already exists; use --force to overwrite it"
    again = pickle.loads(pickle.dumps(err.value))  # tokenize's workers may send errors back
    assert type(again) is OutputExists and str(again) == str(err.value) and again.worded(CLI) == worded(err.value, CLI)
    assert main(["compress", str(stereo[0]), str(taken), "--model", model_path, "-q"]) == 1
    line = capsys.readouterr().err.strip()
    assert line == f"rotcodec: error: {taken} already exists; use --force to overwrite it"
    # Another model's file: a FormatError, worded for each reader.
    with pytest.raises(FormatError) as err:
        rotcodec.decompress(rotcodec.compress(stereo[1], 16000, model_path), _other_model())
    assert isinstance(err.value, OtherModel) and str(err.value).endswith("(model=PATH)")
    assert worded(err.value, CLI).endswith("(--model PATH)")
    assert worded(ValueError("plain")) == "plain"


def _other_model() -> rotcodec.Codec:
    torch.manual_seed(1)
    return rotcodec.Codec(rotcodec.CodecConfig.preset("tiny")).eval()


def test_detokenize_says_decoded_because_its_summary_says_so():
    from rotcodec.tokenize import Summary

    assert Summary(2, 0, 0, 7200.0, 10.0).line().startswith("2 files coded (2.000 h of audio)")
    assert Summary(2, 0, 0, 7200.0, 10.0, verb="decoded").line().startswith("2 files decoded (2.000 h of audio)")


# ----- small shared helpers -------------------------------------------------------------------------
def test_int_checks_refuse_bools_and_take_numpy_ints_only_where_asked():
    from rotcodec.checks import is_int, is_number, positive_int

    assert is_int(3) and not is_int(True) and not is_int(3.0) and not is_int(np.int64(3))
    assert is_int(np.int64(3), numpy=True) and not is_int(np.bool_(True), numpy=True)
    assert is_number(1.5) and is_number(2) and not is_number(False) and not is_number("1")
    assert positive_int("jobs", 2) == 2 and type(positive_int("n", np.int32(2), numpy=True)) is int
    for bad in (0, -1, True, 2.0, "2"):
        with pytest.raises(ValueError, match=f"jobs must be a positive int, got {bad!r}"):
            positive_int("jobs", bad)


def test_take_stops_at_the_length_without_pulling_more_and_says_when_short():
    from rotcodec.coding.resampling import take

    pulled = []

    def blocks():
        for i in range(5):
            pulled.append(i)
            yield torch.full((2, 4), float(i))

    out = torch.cat(list(take(blocks(), 6)), dim=-1)
    assert out.shape == (2, 6) and out[0].tolist() == [0, 0, 0, 0, 1, 1] and pulled == [0, 1]
    with pytest.raises(ValueError, match="ended after 20 samples, expected 21"):
        list(take(blocks(), 21))
    with pytest.raises(RuntimeError, match="20 of 21"):
        list(take(blocks(), 21, short=lambda got: RuntimeError(f"{got} of 21")))


def test_one_device_helper_and_one_float64_copy(tiny):
    from rotcodec.coding.chunks import encoder_for, model_device
    from rotcodec.models import check_device

    assert model_device(tiny) == torch.device("cpu") and check_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        check_device("gpu0")
    same, dtype = encoder_for(tiny, exact=False)
    assert same is tiny and dtype == torch.float32
    copy, dtype = encoder_for(tiny, exact=True)
    assert copy is not tiny and dtype == torch.float64 and not copy.training
    assert next(copy.parameters()).dtype == torch.float64 and next(tiny.parameters()).dtype == torch.float32
