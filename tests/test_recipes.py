"""Bundled training recipes: reachable by name from any install (rotcodec/recipes is package data,
a link to the top-level recipes/ folder in the source tree)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rotcodec import api
from rotcodec.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_every_top_level_recipe_is_bundled_by_name():
    names = sorted(p.stem for p in (ROOT / "recipes").glob("*.toml"))
    assert names and api.bundled_recipes() == names
    for name in names:
        assert api.recipe_path(name).read_bytes() == (ROOT / "recipes" / f"{name}.toml").read_bytes()


def test_a_file_wins_over_a_name_and_unknown_names_list_the_bundled_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.toml").write_text("[model]\n")
    assert api.recipe_path("mine.toml") == Path("mine.toml")
    with pytest.raises(FileNotFoundError, match="bundled recipes: .*stft16k_cpu"):
        api.recipe_path("no_such_recipe")
    with pytest.raises(FileNotFoundError):
        api.recipe_path("../recipes/tiny_cpu")  # names only, no paths into the package


def test_train_takes_a_bundled_recipe_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no recipes/ folder here
    argv = ["--data", str(tmp_path / "no-audio"), "--out", str(tmp_path / "run")]
    assert main(["train", "tiny_cpu", *argv]) == 1
    err = capsys.readouterr().err
    assert "recipe" not in err and "no-audio" in err, err  # the recipe was found; the data is what is missing
    assert main(["train", "tiny_cpuu", *argv]) == 1
    assert "no such recipe file or bundled recipe: tiny_cpuu" in capsys.readouterr().err


def test_a_build_carries_the_recipe_files(tmp_path):
    """What a wheel packs (setuptools build_py): the recipes as files under rotcodec/recipes."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "recipes", src / "recipes")
    shutil.copytree(ROOT / "rotcodec", src / "rotcodec", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    assert (src / "rotcodec" / "recipes").is_symlink()
    done = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py",
                           "--build-lib", str(tmp_path / "lib")], cwd=src, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    built = tmp_path / "lib" / "rotcodec" / "recipes"
    assert not built.is_symlink()
    assert sorted(p.name for p in built.iterdir()) == sorted(p.name for p in (ROOT / "recipes").glob("*.toml"))
