"""``rotcodec tokenize`` / ``detokenize`` through the CLI, and compress/decompress through pipes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import rotcodec
from rotcodec.cli import main
from rotcodec.tokenize import MANIFEST, read_manifest
from rotcodec.tokens import load_codes, load_gains


@pytest.fixture()
def corpus(tmp_path):
    """IN_DIR with a nested tree: mono 16 kHz, stereo 22.05 kHz flac, and one broken file."""
    root = tmp_path / "in"
    (root / "a" / "b").mkdir(parents=True)
    rng = np.random.default_rng(0)
    sf.write(root / "one.wav", (rng.standard_normal(9000) * 0.1).astype(np.float32), 16000)
    sf.write(root / "a" / "b" / "two.flac", (rng.standard_normal((7000, 2)) * 0.1).astype(np.float32), 22050)
    (root / "a" / "broken.wav").write_bytes(b"RIFF nonsense")
    return root


def _tokenize(corpus, out, model_path, *extra):
    return main(["tokenize", str(corpus), str(out), "--model", model_path, "-q", *extra])


def test_tokenize_writes_tree_and_manifest_and_lists_errors(corpus, tmp_path, model_path, capsys):
    out = tmp_path / "tok"
    assert _tokenize(corpus, out, model_path, "--kbps", "1.6") == 1  # one file failed, the rest done
    assert "2 files coded" in capsys.readouterr().err
    manifest = read_manifest(out)
    assert sorted(manifest) == ["a/b/two.flac", "a/broken.wav", "one.wav"]
    assert "not a readable audio file" in manifest["a/broken.wav"]["error"]
    two = manifest["a/b/two.flac"]
    model = rotcodec.load_model(model_path)
    assert two["tokens"] == "a/b/two.rcq" and (out / "a/b/two.rcq").is_file()
    # --kbps is each file's total: 1.6 kbps is 4 stages of the tiny model for a mono file, 2 a channel for stereo.
    assert (two["sample_rate"], two["channels"], two["length"], two["n_q"]) == (22050, 2, 7000, 2)
    assert manifest["one.wav"]["n_q"] == 4
    assert two["duration"] == pytest.approx(7000 / 22050)
    assert two["frames"] == -(-round(7000 * 16000 / 22050) // model.hop_length)
    assert two["model_hash"] and two["model"].startswith("tiny@")
    assert load_codes(out / "a/b/two.rcq").shape == (2, 2, two["frames"])
    assert not list(out.rglob("*.tmp"))


def test_rerun_skips_finished_files_and_retries_errors(corpus, tmp_path, model_path, capsys):
    out = tmp_path / "tok"
    _tokenize(corpus, out, model_path)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.rcq")}
    (corpus / "a" / "broken.wav").unlink()
    sf.write(corpus / "a" / "broken.wav", np.zeros(4000, dtype=np.float32), 16000)  # fixed meanwhile
    capsys.readouterr()
    assert _tokenize(corpus, out, model_path) == 0
    err = capsys.readouterr().err
    assert "1 files coded" in err and "2 already done" in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.rcq") if p in before} == before
    assert "error" not in read_manifest(out)["a/broken.wav"]
    lines = (out / MANIFEST).read_text().splitlines()
    assert len(lines) == 3  # compacted: one line per file


def test_killed_run_leaves_no_partial_files_and_resumes(corpus, tmp_path, model_path):
    out = tmp_path / "tok"
    _tokenize(corpus, out, model_path)
    # what a kill leaves: a temp file, a token file without its rename... and a half-written line
    (out / "a" / ".x.rcq.0123abcd.tmp").write_bytes(b"partial")
    (out / "one.rcq").unlink()
    with open(out / MANIFEST, "a") as f:
        f.write('{"path": "one.wav", "tok')
    assert _tokenize(corpus, out, model_path) == 1  # broken.wav still fails
    assert (out / "one.rcq").is_file() and not list(out.rglob("*.tmp"))
    assert read_manifest(out)["one.wav"]["tokens"] == "one.rcq"


def test_foreign_files_and_other_settings_are_not_overwritten(corpus, tmp_path, model_path, capsys):
    out = tmp_path / "tok"
    out.mkdir()
    (out / "one.rcq").write_bytes(b"a user's file")
    _tokenize(corpus, out, model_path)
    assert (out / "one.rcq").read_bytes() == b"a user's file"
    assert "not overwritten without force" in read_manifest(out)["one.wav"]["error"]
    capsys.readouterr()
    assert _tokenize(corpus, out, model_path, "--kbps", "0.8") == 1
    assert "other settings (n_q 4 (now 1)" in capsys.readouterr().err  # two.flac: 0.4 kbps a channel
    assert _tokenize(corpus, out, model_path, "--kbps", "0.8", "--force") == 1  # broken.wav
    assert read_manifest(out)["one.wav"]["n_q"] == 2 and read_manifest(out)["a/b/two.flac"]["n_q"] == 1


def test_npy_tokens_and_detokenize_round_trip(corpus, tmp_path, model_path):
    out, back = tmp_path / "tok", tmp_path / "back"
    _tokenize(corpus, out, model_path, "--format", "npy")
    arr = np.load(out / "a/b/two.npy", allow_pickle=False)
    assert arr.dtype == np.int16 and arr.shape == (2, 4, read_manifest(out)["a/b/two.flac"]["frames"])
    assert main(["detokenize", str(out), str(back), "--model", model_path, "-q"]) == 0
    for rel, (sr, ch, n) in {"one.wav": (16000, 1, 9000), "a/b/two.wav": (22050, 2, 7000)}.items():
        info = sf.info(back / rel)
        assert (info.samplerate, info.channels, info.frames) == (sr, ch, n)
    # the gains sit in the manifest line, one list per channel and gain block
    entry = read_manifest(out)["a/b/two.flac"]
    gains, gain_frames = load_gains(out / "a/b/two.npy", entry)
    assert entry["gain_frames"] == gain_frames == 50
    assert gains.dtype == np.int8 and gains.shape == (2, -(-entry["frames"] // 50))
    codes, api_gains = rotcodec.encode(corpus / "a/b/two.flac", model=model_path, return_gains=True)
    assert np.array_equal(gains, api_gains)
    # the same audio as decoding the codes and gains through the API
    wav, _ = sf.read(back / "one.wav", dtype="float32")
    gains, gain_frames = load_gains(out / "one.npy", read_manifest(out)["one.wav"])
    ref = rotcodec.decode(load_codes(out / "one.npy"), model=model_path, sample_rate=16000, length=9000,
                          gains=gains, gain_frames=gain_frames)[0]
    assert np.abs(wav - np.clip(ref.numpy(), -1, 1)).max() < 2e-4
    # without the gains the codes decode at the reference level, not the file's
    plain = rotcodec.decode(load_codes(out / "one.npy"), model=model_path, sample_rate=16000, length=9000)[0]
    assert not np.allclose(plain.numpy(), ref.numpy(), atol=1e-3)


def test_rcq_tokens_carry_their_gains_and_no_condition_drops_them(corpus, tmp_path, model_path, capsys):
    out = tmp_path / "tok"
    _tokenize(corpus, out, model_path, "--exact")
    entry = read_manifest(out)["one.wav"]
    assert entry["gain_frames"] == 50 and "gains" not in entry  # an .rcq holds its own
    gains, gain_frames = load_gains(out / "one.rcq")
    codes, api_gains = rotcodec.encode(corpus / "one.wav", model=model_path, exact=True, return_gains=True)
    assert gain_frames == 50 and np.array_equal(gains, api_gains) and np.array_equal(load_codes(out / "one.rcq"), codes)
    capsys.readouterr()
    assert _tokenize(corpus, out, model_path, "--exact", "--no-condition") == 1
    assert "other settings (gain_frames 50 (now 0)" in capsys.readouterr().err
    raw = tmp_path / "raw"
    _tokenize(corpus, raw, model_path, "--exact", "--no-condition", "--format", "npy")
    entry = read_manifest(raw)["one.wav"]
    assert entry["gain_frames"] == 0 and "gains" not in entry
    assert load_gains(raw / "one.npy", entry) == (None, 0)
    assert np.array_equal(load_codes(raw / "one.npy"),
                          rotcodec.encode(corpus / "one.wav", model=model_path, exact=True, condition=False))
    # a manifest written before gains existed has no gain_frames: its tokens were coded raw
    lines = [json.loads(ln) for ln in (raw / MANIFEST).read_text().splitlines()]
    for line in lines:
        line.pop("gain_frames", None)
    (raw / MANIFEST).write_text("".join(json.dumps(ln) + "\n" for ln in lines))
    assert _tokenize(corpus, raw, model_path, "--exact", "--no-condition", "--format", "npy") == 1  # broken.wav
    assert "2 already done" in capsys.readouterr().err
    assert main(["detokenize", str(raw), str(tmp_path / "back"), "--model", model_path, "-q"]) == 0


def test_detokenize_refuses_malformed_gains(corpus, tmp_path, model_path, capsys):
    out = tmp_path / "tok"
    _tokenize(corpus, out, model_path, "--format", "npy")
    entries = read_manifest(out)
    bad = {"one.wav": {**entries["one.wav"], "gains": [[1, 2, 3, 4]]},  # 4 blocks for 29 frames
           "a/b/two.flac": {**entries["a/b/two.flac"], "gains": [[1000], [0]]}}  # not int8
    (out / MANIFEST).write_text("".join(json.dumps(e) + "\n" for e in {**entries, **bad}.values()))
    assert main(["detokenize", str(out), str(tmp_path / "back"), "--model", model_path, "-q"]) == 1
    err = capsys.readouterr().err
    assert "one.wav: gains of shape (1, 4)" in err and "two.flac" in err and "int8" in err


def test_detokenize_reports_malformed_tokens_and_goes_on(corpus, tmp_path, model_path, capsys):
    out, back = tmp_path / "tok", tmp_path / "back"
    _tokenize(corpus, out, model_path, "--format", "npy")
    np.save(out / "one.npy", np.full((1, 4, 29), 999, dtype=np.int16))  # codes outside the codebook
    assert main(["detokenize", str(out), str(back), "--model", model_path, "-q"]) == 1
    err = capsys.readouterr().err
    assert "one.wav: code 999 is outside the codebook 0..255" in err
    assert (back / "a/b/two.wav").is_file() and not (back / "one.wav").exists()
    assert not list(back.rglob("*.tmp"))


def test_the_beam_is_a_setting_of_the_folder(corpus, tmp_path, model_path, capsys):
    out = tmp_path / "tok"
    assert _tokenize(corpus, out, model_path, "--beam", "3", "--jobs", "2", "--exact") == 1  # broken.wav
    entry = read_manifest(out)["one.wav"]
    assert entry["beam"] == 3
    searched = rotcodec.encode(str(corpus / "one.wav"), model=rotcodec.load_model(model_path).set_beam(3), exact=True)
    assert np.array_equal(load_codes(out / "one.rcq"), searched)  # the workers searched too
    assert not np.array_equal(searched, rotcodec.encode(str(corpus / "one.wav"), model=model_path, exact=True))
    capsys.readouterr()
    assert _tokenize(corpus, out, model_path, "--exact") == 1
    assert "other settings (beam 3 (now 1)" in capsys.readouterr().err
    # A manifest written before the setting existed has no "beam": its lines were coded greedily.
    lines = [json.loads(ln) for ln in (out / MANIFEST).read_text().splitlines()]
    for line in lines:
        line.pop("beam", None)
    (out / MANIFEST).write_text("".join(json.dumps(ln) + "\n" for ln in lines))
    assert _tokenize(corpus, out, model_path, "--beam", "2", "--exact") == 1
    assert "other settings (beam 1 (now 2)" in capsys.readouterr().err
    assert _tokenize(corpus, out, model_path, "--beam", "0") == 1
    assert "--beam must be >= 1" in capsys.readouterr().err


def test_entropy_coding_is_a_setting_of_the_folder(corpus, tmp_path, model_path, capsys):
    """``--entropy``: rcq token files range-coded with the model's context model, the same codes
    as plain ones; refused for npy tokens and for a model without a context model."""
    from pathlib import Path

    from rotcodec.entropy import bundled
    from rotcodec.io.container import PAYLOAD_ENTROPY, read_header

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from fuzz_rcq import register_context_model

    model = rotcodec.load_model(model_path)
    assert _tokenize(corpus, tmp_path / "none", model_path, "--entropy") == 1
    assert "no context model" in capsys.readouterr().err and not (tmp_path / "none").exists()
    register_context_model(model)
    try:
        assert _tokenize(corpus, tmp_path / "npy", model_path, "--entropy", "--format", "npy") == 1
        assert "rcq token files" in capsys.readouterr().err and not (tmp_path / "npy").exists()
        out, plain = tmp_path / "tok", tmp_path / "plain"
        assert _tokenize(corpus, out, model_path, "--entropy") == 1  # broken.wav
        assert _tokenize(corpus, plain, model_path) == 1
        for name in ("one.rcq", "a/b/two.rcq"):
            with open(out / name, "rb") as f:
                assert read_header(f).coding == PAYLOAD_ENTROPY
            assert np.array_equal(load_codes(out / name), load_codes(plain / name))
        assert read_manifest(out)["one.wav"]["entropy"] is True
        capsys.readouterr()
        assert _tokenize(corpus, out, model_path) == 1
        assert "other settings (entropy True (now False)" in capsys.readouterr().err
    finally:
        bundled.unregister(f"{model.config.name}{bundled.SUFFIX}")


def test_two_jobs_give_the_same_tokens(corpus, tmp_path, model_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _tokenize(corpus, one, model_path, "--exact")
    _tokenize(corpus, two, model_path, "--exact", "--jobs", "2")
    for rel in ("one.rcq", "a/b/two.rcq"):
        assert (one / rel).read_bytes() == (two / rel).read_bytes()


def test_compress_to_stdout_and_decompress_from_stdin(corpus, tmp_path, model_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "rotcodec"]
    rcq = subprocess.run(cmd + ["compress", str(corpus / "one.wav"), "-", "--model", model_path],
                         capture_output=True, env=env, check=True).stdout
    assert rcq[:4] == b"RCQ\x89"
    assert rcq == rotcodec.compress(sf.read(corpus / "one.wav", dtype="float32")[0], 16000, model_path)
    out = tmp_path / "out.wav"
    done = subprocess.run(cmd + ["decompress", "-", str(out), "--model", model_path], input=rcq,
                          capture_output=True, env=env)
    assert done.returncode == 0, done.stderr
    assert sf.info(out).frames == 9000
    bad = subprocess.run(cmd + ["decompress", "-", str(tmp_path / "x.wav"), "--model", model_path],
                         input=b"junk", capture_output=True, env=env)
    assert bad.returncode == 1 and b"not a rotcodec .rcq file" in bad.stderr
    assert not (tmp_path / "x.wav").exists()


def test_manifest_with_a_broken_line_is_an_error(tmp_path):
    (tmp_path / MANIFEST).write_text('{"path": "a.wav"}\nnot json\n{"path": "b.wav"}\n')
    with pytest.raises(rotcodec.FormatError, match="line 2"):
        read_manifest(tmp_path)
    assert json.loads('{"path": "a.wav"}')  # the format is plain JSON lines


def test_shards_together_are_the_unsharded_run(tmp_path, model_path, capsys):
    root = tmp_path / "in"
    (root / "d").mkdir(parents=True)
    rng = np.random.default_rng(5)
    for name, channels in (("a.wav", 1), ("b.wav", 2), ("d/c.wav", 1), ("d/e.flac", 1), ("f.wav", 1),
                           ("f.flac", 1), ("g.wav", 2)):  # f.wav and f.flac share a name: f.wav.rcq, f.flac.rcq
        sf.write(root / name, (rng.standard_normal((3000 + 500 * len(name), channels)) * 0.1).astype(np.float32), 16000)
    (root / "d" / "broken.wav").write_bytes(b"RIFF nonsense")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert _tokenize(root, whole, model_path) == 1  # broken.wav
    for i in (1, 2, 3):
        _tokenize(root, parts, model_path, "--shard", f"{i}/3")
    names = sorted(p.name for p in parts.glob("manifest*"))
    assert names == [f"manifest.shard-{i}-of-3.jsonl" for i in (1, 2, 3)]
    shards = [[json.loads(line)["path"] for line in (parts / n).read_text().splitlines()] for n in names]
    assert sorted(sum(shards, [])) == sorted(read_manifest(whole))  # disjoint, and every file
    assert [len(s) for s in shards] == [3, 3, 2]  # 8 files, every 3rd from the 1st, 2nd, 3rd
    drop = ("duration",)  # the same lines, file for file
    assert {k: {f: v for f, v in e.items() if f not in drop} for k, e in read_manifest(parts).items()} == \
           {k: {f: v for f, v in e.items() if f not in drop} for k, e in read_manifest(whole).items()}
    tokens = sorted(p.relative_to(whole) for p in whole.rglob("*.rcq"))
    assert tokens == sorted(p.relative_to(parts) for p in parts.rglob("*.rcq")) and len(tokens) == 7
    for rel in tokens:
        assert np.array_equal(load_codes(whole / rel), load_codes(parts / rel)), rel
        assert np.array_equal(load_gains(whole / rel)[0], load_gains(parts / rel)[0]), rel
    # A rerun of one shard resumes it alone; detokenize reads the shard manifests as one dataset.
    capsys.readouterr()
    assert _tokenize(root, parts, model_path, "--shard", "2/3") == 0
    assert "0 files coded" in capsys.readouterr().err and (parts / "d" / "e.rcq").is_file()
    assert main(["detokenize", str(parts), str(tmp_path / "back"), "--model", model_path, "-q"]) == 0
    back = sorted(p.relative_to(tmp_path / "back").as_posix() for p in (tmp_path / "back").rglob("*.wav"))
    assert back == ["a.wav", "b.wav", "d/c.wav", "d/e.wav", "f.wav", "g.wav"]  # f.flac and f.wav both decode to f.wav
    assert main(["tokenize", str(root), str(parts), "--shard", "4/3", "--model", model_path]) == 1
    assert "--shard must be I/N with 1 <= I <= N" in capsys.readouterr().err
