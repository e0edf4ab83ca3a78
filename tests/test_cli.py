"""The command line through ``main(argv)``: happy paths, --force, and one-line errors."""

import numpy as np
import pytest
import soundfile as sf

from rotcodec import api, models
from rotcodec.cli import main


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A temp folder as cwd holding a 1 s 22.05 kHz stereo speech-like wav, and no bundled models."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(models, "_pretrained_dir", lambda: tmp_path / "no-bundle")
    t = np.arange(22050) / 22050
    voice = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 15)) * np.sqrt(np.clip(np.sin(2 * np.pi * 3 * t), 0, None))
    stereo = np.stack([0.3 * voice, 0.2 * voice[::-1]], axis=1).astype(np.float32)
    sf.write(tmp_path / "in.wav", stereo, 22050)
    return tmp_path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(code, err, expected_code=1, match=""):
    assert code == expected_code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rotcodec: error: "), err
    assert "Traceback" not in err and match in lines[0], err


def test_compress_info_decompress(work, capsys, model_path):
    # --kbps is the file's total: 1.6 kbps over two channels is 0.8 kbps (2 stages) a channel.
    code, out, err = run(capsys, "compress", "in.wav", "a.rcq", "--model", model_path, "--kbps", "1.6")
    assert code == 0 and "a.rcq" in out and "2 stages" in out and err == ""
    code, out, _ = run(capsys, "info", "a.rcq")
    assert code == 0
    for text in ("tiny@1", "22050 Hz original", "channels:", "2 x 8 bits", "1.000 s (22050 samples)",
                 "nominal bitrate: 1.600 kbps (0.800 kbps per channel)", "real bitrate:"):
        assert text in out, (text, out)
    code, out, _ = run(capsys, "decompress", "a.rcq", "a.wav", "--model", model_path, "--device", "cpu")
    assert code == 0 and "a.wav" in out
    info = sf.info(work / "a.wav")
    assert (info.samplerate, info.channels, info.frames) == (22050, 2, 22050)


def test_roundtrip(work, capsys, model_path):
    code, out, err = run(capsys, "roundtrip", "in.wav", "rt.wav", "--model", model_path)
    assert code == 0, err
    assert "kbps real" in out and "PESQ-WB:" in out and "mel dist:" in out and "SI-SDR:" in out
    assert sf.info(work / "rt.wav").frames == 22050


def test_force(work, capsys, model_path):
    (work / "a.rcq").write_bytes(b"old")
    code, _, err = run(capsys, "compress", "in.wav", "a.rcq", "--model", model_path)
    assert_one_error(code, err, match="already exists")
    assert (work / "a.rcq").read_bytes() == b"old"
    assert run(capsys, "compress", "in.wav", "a.rcq", "--model", model_path, "--force")[0] == 0
    (work / "a.wav").write_bytes(b"old")
    code, _, err = run(capsys, "decompress", "a.rcq", "a.wav", "--model", model_path)
    assert_one_error(code, err, match="--force")
    assert run(capsys, "decompress", "a.rcq", "a.wav", "--model", model_path, "--force")[0] == 0
    assert sf.info(work / "a.wav").frames == 22050


def test_errors_are_one_line_and_leave_no_output(work, capsys, model_path):
    m = ["--model", model_path]
    (work / "empty.wav").write_bytes(b"")
    sf.write(work / "zero.wav", np.zeros((0, 1), dtype=np.float32), 16000)
    nan = np.zeros(8000, dtype=np.float32)
    nan[100] = np.nan
    sf.write(work / "nan.wav", nan, 16000, subtype="FLOAT")
    (work / "notes.txt").write_text("not audio")
    (work / "bad.rcq").write_bytes(b"RCQ\x89garbage")
    (work / "dir").mkdir()
    cases = [
        (["compress", "missing.wav", "o.rcq", *m], "no such file"),
        (["compress", "dir", "o.rcq", *m], "directory"),
        (["compress", "empty.wav", "o.rcq", *m], "empty.wav"),
        (["compress", "zero.wav", "o.rcq", *m], "no samples"),
        (["compress", "nan.wav", "o.rcq", *m], "NaN"),
        (["compress", "notes.txt", "o.rcq", *m], "not a readable audio file"),
        (["compress", "in.wav", "nofolder/o.rcq", *m], "folder does not exist"),
        (["compress", "in.wav", "dir", *m], "directory"),
        (["compress", "in.wav", "o.rcq", *m, "--kbps", "0.1"], "below one stage"),
        (["compress", "in.wav", "o.rcq", "--model", "nope.pt"], "no such model file"),
        (["compress", "in.wav", "o.rcq", "--model", str(work / "notes.txt")], "not a loadable rotcodec model"),
        (["compress", "in.wav", "o.rcq", *m, "--device", "tpu9"], "device"),
        (["decompress", "missing.rcq", "o.wav", *m], "no such file"),
        (["decompress", "dir", "o.wav", *m], "directory"),
        (["decompress", "bad.rcq", "o.wav", *m], ".rcq"),
        (["decompress", "in.wav", "o.wav", *m], "wrong magic"),
        (["info", "bad.rcq"], ".rcq"),
        (["info", "missing.rcq"], "no such file"),
        (["roundtrip", "nan.wav", "o.wav", *m], "NaN"),
    ]
    for argv, match in cases:
        code, out, err = run(capsys, *argv)
        assert_one_error(code, err, match=match)
    assert run(capsys, "compress", "in.wav", "ok.rcq", *m)[0] == 0
    code, _, err = run(capsys, "decompress", "ok.rcq", "o.mp3", *m)
    assert_one_error(code, err, match="extension")
    (work / "cut.rcq").write_bytes((work / "ok.rcq").read_bytes()[:-7])
    code, _, err = run(capsys, "decompress", "cut.rcq", "o.wav", *m)
    assert_one_error(code, err, match="truncated")
    leftovers = {p.name for p in work.iterdir()} - {"empty.wav", "zero.wav", "nan.wav", "notes.txt", "bad.rcq",
                                                     "dir", "in.wav", "ok.rcq", "cut.rcq"}
    assert leftovers == set()  # no outputs, no temp files


def test_no_model_anywhere_says_how_to_get_one(work, capsys):
    code, _, err = run(capsys, "compress", "in.wav", "o.rcq")
    assert_one_error(code, err, match=api.NO_MODEL_MESSAGE.replace("model=PATH", "--model PATH"))
    assert not (work / "o.rcq").exists()


def test_usage_errors_exit_2(work, capsys):
    for argv in ([], ["compress", "in.wav"], ["frobnicate"], ["compress", "in.wav", "o.rcq", "--kbps", "six"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "Traceback" not in err and "error:" in err
    assert run(capsys, "--help")[0] == 0


def test_eval_prints_a_table_per_bitrate_and_writes_json(work, capsys, model_path):
    import json

    (work / "set").mkdir()
    (work / "in.wav").rename(work / "set" / "a.wav")
    # the clip is stereo, and --kbps the file's total: 0.8 kbps is 1 stage a channel, 3.2 all 4
    code, out, err = run(capsys, "eval", "--data", "set", "--model", model_path, "--kbps", "0.8,3.2", "--json", "s.json")
    assert code == 0, err
    quality, usage = out.split("Per stage:")
    rows = [line for line in quality.splitlines() if line.startswith("| rotcodec")]
    assert len([line for line in usage.splitlines() if line.startswith("| rotcodec")]) == 2
    assert len(rows) == 2 and "0.8 kbps" in rows[0] and "3.2 kbps" in rows[1]
    scores = json.loads((work / "s.json").read_text())
    assert [s["kbps_nominal"] for s in scores] == [0.8, 3.2]
    assert scores[0]["kbps_real"] < scores[1]["kbps_real"] and all(s["clips"] == 1 for s in scores)
    assert [len(s["usage"]) for s in scores] == [1, 4] and "stage 4" in out
    assert all(0 < u <= 100 for s in scores for u in s["usage"])
    assert all(1 <= p <= 256 for s in scores for p in s["perplexity"])
    assert [len(s["qerr"]) for s in scores] == [1, 4] and [len(s["qerr_rel"]) for s in scores] == [1, 4]
    assert [len(s["lam"]) for s in scores] == [1, 4] and all(0 <= o <= 1 for s in scores for o in s["obtuse"])
    assert all(q >= 0 and 0 <= r < 10 for s in scores for q, r in zip(s["qerr"], s["qerr_rel"]))
    assert scores[0]["qerr"][0] == pytest.approx(scores[1]["qerr"][0])  # stage 1 sees the same input
    code, _, err = run(capsys, "eval", "--data", "set", "--model", model_path, "--json", "s.json")
    assert_one_error(code, err, match="exists")
    code, _, err = run(capsys, "eval", "--data", "nowhere", "--model", model_path)
    assert_one_error(code, err, match="no such folder")
    code, _, err = run(capsys, "eval", "--data", "set", "--model", model_path, "--kbps", "0.1")
    assert_one_error(code, err)


def test_eval_plot_writes_pngs_and_never_overwrites(work, capsys, model_path):
    pytest.importorskip("matplotlib")
    (work / "set").mkdir()
    (work / "in.wav").rename(work / "set" / "a.wav")
    code, out, err = run(capsys, "eval", "--data", "set", "--model", model_path, "--kbps", "0.8,1.6", "--plot", "figs")
    assert code == 0, err
    pngs = sorted(p.name for p in (work / "figs").iterdir())
    assert pngs == ["spectrogram_0_a.png", "usage.png"]
    assert all((work / "figs" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    code, _, err = run(capsys, "eval", "--data", "set", "--model", model_path, "--plot", "figs")
    assert_one_error(code, err, match="exists")


def test_stage_errors_match_a_direct_computation(model_path):
    """qerr of stage 1 = mean ||P(z) - nearest code||^2, computed here from the parts, on the
    conditioned signal the encoder sees."""
    import torch

    from rotcodec.coding.conditioning import GAIN_FRAMES, condition
    from rotcodec.evaluate import stage_errors

    model = api.load_model(model_path)
    wav = (0.1 * np.random.default_rng(3).standard_normal((1, 8000))).astype(np.float32)
    err, energy, lam, obtuse, frames = stage_errors(model, wav, model.sample_rate, 2)
    with torch.no_grad():
        x = condition(torch.from_numpy(wav), GAIN_FRAMES * model.hop_length)[0]
        z = model.encoder(x[None])
        stage = model.quantizer.layers[0]
        e = stage.project(z).reshape(-1, stage.config.code_dim)
        q = stage.codewords()[model.quantizer.layers[0].encode(z).reshape(-1)]
    assert frames == e.shape[0] == 8000 // model.hop_length
    assert err[0] == pytest.approx(float((e - q).pow(2).sum(-1).mean()), rel=1e-4)
    assert energy[0] == pytest.approx(float(e.pow(2).sum(-1).mean()), rel=1e-4)
    assert lam[0] == pytest.approx(float((q.norm(dim=-1) / e.norm(dim=-1)).mean()), rel=1e-4)
    assert obtuse[0] == pytest.approx(float(((e * q).sum(-1) < 0).float().mean()))


def test_stage_stats_on_known_codes():
    from rotcodec.evaluate import stage_stats

    a = np.array([[[0, 1, 0, 1], [3, 3, 3, 3]]])  # [C=1, n_q=2, F=4]
    b = np.array([[[1, 0], [3, 3]]])
    usage, perp = stage_stats([a, b], codebook_size=4)
    assert usage == [50.0, 25.0]
    assert perp[0] == pytest.approx(2.0) and perp[1] == pytest.approx(1.0)


def _fresh_python(code: str) -> str:
    """Run ``code`` in a new interpreter (nothing imported yet) and return its stdout."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["compress", "--help"], ["tokenize", "--help"],
                                  ["eval", "-h"], ["train", "--help"], ["ablate", "--help"], []])
def test_help_and_version_do_not_import_torch(argv):
    out = _fresh_python(
        "import contextlib, io, sys\n"
        "from rotcodec.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        f"    code = main({argv!r})\n"
        "print(code, 'torch' in sys.modules)\n")
    assert out.split() == ["2" if not argv else "0", "False"], (argv, out)


def test_version_is_the_installed_package_version(capsys):
    from importlib.metadata import version

    import rotcodec

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"rotcodec {rotcodec.__version__}" == f"rotcodec {version('rotcodec')}"


def test_help_lists_the_training_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "train" in out and "ablate" in out
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "--data" in out and "--resume" in out


def test_threads_flag_and_environment_set_torch_threads(work, capsys, model_path, monkeypatch):
    import torch  # conftest puts torch back to one thread after the test

    monkeypatch.delenv("ROTCODEC_THREADS", raising=False)
    torch.set_num_threads(1)
    code, _, err = run(capsys, "compress", "in.wav", "t.rcq", "--model", model_path, "--threads", "2")
    assert code == 0, err
    assert torch.get_num_threads() == 2
    monkeypatch.setenv("ROTCODEC_THREADS", "3")
    assert run(capsys, "decompress", "t.rcq", "t.wav", "--model", model_path)[0] == 0
    assert torch.get_num_threads() == 3
    assert run(capsys, "roundtrip", "in.wav", "r.wav", "--model", model_path, "--threads", "1")[0] == 0
    assert torch.get_num_threads() == 1  # the flag wins over the environment
    monkeypatch.delenv("ROTCODEC_THREADS")
    torch.set_num_threads(2)
    assert run(capsys, "decompress", "t.rcq", "v.wav", "--model", model_path)[0] == 0
    assert torch.get_num_threads() == 2  # neither: torch's setting is left alone
    monkeypatch.setenv("ROTCODEC_THREADS", "many")
    code, _, err = run(capsys, "decompress", "t.rcq", "u.wav", "--model", model_path)
    assert_one_error(code, err, match="$ROTCODEC_THREADS must be a positive integer")
    code, _, err = run(capsys, "compress", "in.wav", "u.rcq", "--model", model_path, "--threads", "0")
    assert_one_error(code, err, match="--threads must be a positive integer")


@pytest.mark.parametrize("command", ["compress", "decompress", "roundtrip", "eval", "tokenize", "detokenize",
                                     "report", "bench", "train"])
def test_every_computing_command_takes_threads(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and "--threads N" in out


def test_messages_name_the_flag_in_the_cli_and_the_argument_in_the_api(work, capsys, model_path, tmp_path):
    import torch

    import rotcodec

    (work / "taken.rcq").write_bytes(b"old")
    with pytest.raises(FileExistsError) as api_err:
        rotcodec.compress_file("in.wav", "taken.rcq", model_path)
    assert "use force=True to overwrite" in str(api_err.value) and "--force" not in str(api_err.value)
    code, _, err = run(capsys, "compress", "in.wav", "taken.rcq", "--model", model_path)
    assert_one_error(code, err, match="use --force to overwrite")
    assert "force=True" not in err
    # A file made by another model: the API says model=PATH, the command line --model PATH.
    torch.manual_seed(1)
    other = rotcodec.Codec(rotcodec.CodecConfig.preset("tiny")).eval()
    assert run(capsys, "compress", "in.wav", "a.rcq", "--model", model_path)[0] == 0
    with pytest.raises(rotcodec.FormatError, match=r"\(model=PATH\)"):
        rotcodec.decompress((work / "a.rcq").read_bytes(), other)
    other.save(work / "other.pt")
    code, _, err = run(capsys, "decompress", "a.rcq", "b.wav", "--model", "other.pt")
    assert_one_error(code, err, match="(--model PATH)")


def test_kbps_above_the_maximum_warns_once_and_is_capped(work, capsys, model_path):
    code, out, err = run(capsys, "compress", "in.wav", "c.rcq", "--model", model_path, "--kbps", "50")
    assert code == 0 and "4 stages" in out
    assert err.strip() == ("rotcodec: warning: 50 kbps is above this model's maximum for 2 channels "
                           "(3.2 kbps, all 4 stages): capped at 3.2 kbps")
    code, _, err = run(capsys, "eval", "--data", ".", "--model", model_path, "--kbps", "50,1.6")
    # eval's --kbps is the file's total too: the stereo clip is capped at 2 x 1.6 kbps
    assert code == 0 and err.count("warning:") == 1 and "for 2 channels (3.2 kbps, all 4 stages)" in err
    (work / "set").mkdir()
    sf.write(work / "set" / "mono.wav", np.zeros(4000, dtype=np.float32), 16000)
    sf.write(work / "set" / "stereo.wav", np.zeros((4000, 2), dtype=np.float32), 16000)
    sf.write(work / "set" / "stereo2.wav", np.zeros((3000, 2), dtype=np.float32), 16000)
    code, _, err = run(capsys, "tokenize", "set", "tok", "--model", model_path, "--kbps", "2.4", "-q")
    assert code == 0 and err.count("warning:") == 1 and "for files of 1 channel(s)" in err, err
    from rotcodec.tokenize import read_manifest

    assert {k: v["n_q"] for k, v in read_manifest("tok").items()} == {"mono.wav": 4, "stereo.wav": 3, "stereo2.wav": 3}


def test_a_file_from_a_model_not_given_names_it_and_says_how_to_pass_it(work, capsys, monkeypatch):
    """`rotcodec decompress mine.rcq out.wav` with no --model: the file names its model, which no
    one passed; the message must not claim that a model was given."""
    import dataclasses

    import torch

    import rotcodec
    from rotcodec.model.loading import weights_hash

    def tiny(name: str, seed: int) -> rotcodec.Codec:
        torch.manual_seed(seed)
        return rotcodec.Codec(dataclasses.replace(rotcodec.CodecConfig.preset("tiny"), name=name)).eval()

    bundled, mine = tiny("bundled", 0), tiny("mine", 1)
    (work / "bundle").mkdir()
    bundled.save(work / "bundle" / "bundled.pt")
    (work / "bundle" / "default.txt").write_text("bundled\n")
    monkeypatch.setattr(models, "_pretrained_dir", lambda: work / "bundle")
    mine.save(work / "mine.pt")
    assert run(capsys, "compress", "in.wav", "mine.rcq", "--model", "mine.pt")[0] == 0
    made = f"this file was made by model 'mine@1' (weights {weights_hash(mine)})"
    not_given = (f"{made}; no model was given, and the bundled model 'bundled@1' (weights {weights_hash(bundled)}) "
                 "did not make it; pass the model that made it (model=PATH)")
    with pytest.raises(rotcodec.FormatError) as err:
        rotcodec.decompress((work / "mine.rcq").read_bytes())
    assert str(err.value) == not_given
    code, _, err = run(capsys, "decompress", "mine.rcq", "out.wav")
    assert_one_error(code, err)
    assert err.strip() == "rotcodec: error: " + not_given.replace("model=PATH", "--model PATH")
    # a model really given: the message says so
    code, _, err = run(capsys, "decompress", "mine.rcq", "out.wav", "--model", "bundle/bundled.pt")
    assert_one_error(code, err, match=f"{made}, not by the model given ('bundled@1', weights {weights_hash(bundled)}); "
                                      "decode it with the model that made it (--model PATH)")
    assert run(capsys, "decompress", "mine.rcq", "out.wav", "--model", "mine.pt")[0] == 0


def test_a_misspelled_option_shows_the_usage_of_its_command(work, capsys):
    code, _, err = run(capsys, "compress", "in.wav", "out.rcq", "--kpbs", "3")
    assert code == 2 and err.startswith("usage: rotcodec compress ")
    assert err.strip().splitlines()[-1] == "rotcodec compress: error: unrecognized arguments: --kpbs 3"
    code, _, err = run(capsys, "info", "a.rcq", "--verbose")
    assert code == 2 and err.startswith("usage: rotcodec info ") and "--verbose" in err
    code, _, err = run(capsys, "--bogus")  # no command: the top-level usage
    assert code == 2 and err.startswith("usage: rotcodec [-h]") and "--bogus" in err
    assert not (work / "out.rcq").exists()


def test_help_names_what_soundfile_reads_and_an_mp3_codes(work, capsys, model_path):
    for command in ("compress", "roundtrip"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and "mp3" in " ".join(out.split()) and "any format soundfile reads" in " ".join(out.split())
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile writes no MP3")
    sf.write(work / "in.mp3", sf.read(work / "in.wav", dtype="float32")[0], 22050, format="MP3")
    code, out, err = run(capsys, "compress", "in.mp3", "m.rcq", "--model", model_path)
    assert code == 0 and "m.rcq" in out, err


def test_one_stage_is_one_stage():
    from rotcodec.text import counted

    assert [counted(n, "stage") for n in (0, 1, 2, 12)] == ["0 stages", "1 stage", "2 stages", "12 stages"]
    assert counted(1, "copy", "copies") == "1 copy" and counted(3, "copy", "copies") == "3 copies"


def test_a_one_stage_file_says_1_stage(work, capsys, model_path):
    # 0.8 kbps over two channels: one stage of 0.4 kbps a channel
    code, out, err = run(capsys, "compress", "in.wav", "one.rcq", "--model", model_path, "--kbps", "0.8")
    assert code == 0 and ", 1 stage, " in out and "stages" not in out, (out, err)
