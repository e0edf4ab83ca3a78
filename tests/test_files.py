"""rotcodec.files: atomic writes (the new file appears whole or not at all, with open()'s permissions), and the user-output writer built on them."""

import os
import stat

import pytest

from rotcodec.files import atomic_write, atomic_write_text


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_new_file_gets_the_umask_permissions_not_a_temp_files(tmp_path, umask_022):
    target = tmp_path / "model.pt"
    atomic_write_text(target, "new")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives under the same umask
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o644
    assert target.read_text() == "new"


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "log.jsonl"
    target.write_text("old\n")

    def fail(f):
        f.write(b"half of it")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, fail)
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["log.jsonl"]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder does not exist"):
        atomic_write_text(tmp_path / "nope" / "x.txt", "x")


def test_a_failing_last_check_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    from rotcodec.files import atomic_open

    target = tmp_path / "out.rcq"
    target.write_bytes(b"old")

    def refuse():
        raise FileExistsError("appeared meanwhile")

    with pytest.raises(FileExistsError, match="meanwhile"):
        with atomic_open(target, before_replace=refuse) as f:
            f.write(b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.rcq"]
    with atomic_open(target, before_replace=lambda: None) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.rcq"]


def test_user_outputs_are_not_overwritten_when_they_appear_during_the_write(tmp_path):
    from rotcodec.files import atomic_writer

    target = tmp_path / "talk.rcq"
    with pytest.raises(FileExistsError, match="use force=True to overwrite"):
        with atomic_writer(target) as f:
            f.write(b"ours")
            target.write_bytes(b"the user's")  # another program wrote it meanwhile
    assert target.read_bytes() == b"the user's"
    assert os.listdir(tmp_path) == ["talk.rcq"]
    with pytest.raises(FileExistsError):
        with atomic_writer(target):
            pass
    with atomic_writer(target, force=True) as f:
        f.write(b"ours")
    assert target.read_bytes() == b"ours"
