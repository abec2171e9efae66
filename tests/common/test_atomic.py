"""Atomic writes: whole files only, with the modes the umask gives, and folders replaced as a whole."""

import os
import stat

import pytest

from s3prl_mi_probe.common.atomic import current_umask, replace_folder, write_bytes_atomic


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_files_and_folders_get_the_modes_the_umask_gives(tmp_path, umask):
    assert current_umask() == umask
    write_bytes_atomic(tmp_path / "report.html", b"<html></html>")
    assert mode(tmp_path / "report.html") == 0o666 & ~umask
    replace_folder(tmp_path / "plots", lambda folder: (folder / "a.png").write_bytes(b"png"))
    assert mode(tmp_path / "plots") == 0o777 & ~umask
    assert mode(tmp_path / "plots" / "a.png") == 0o666 & ~umask


def test_a_replaced_folder_keeps_nothing_stale_and_an_interrupted_fill_changes_nothing(tmp_path):
    replace_folder(tmp_path / "tb", lambda folder: [(folder / name).mkdir() for name in ("fbank", "hubert")])
    replace_folder(tmp_path / "tb", lambda folder: (folder / "fbank").mkdir())
    assert sorted(path.name for path in (tmp_path / "tb").iterdir()) == ["fbank"]

    def interrupted(folder):
        (folder / "half").mkdir()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_folder(tmp_path / "tb", interrupted)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tb"]
    assert sorted(path.name for path in (tmp_path / "tb").iterdir()) == ["fbank"]
