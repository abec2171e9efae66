"""Both install kinds ship the import hook (.pth) and the runner configs."""

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from s3prl_mi_probe.cli import main
from s3prl_mi_probe.runner.shipped_configs import config_path

REPO = Path(__file__).resolve().parents[1]


def test_regular_wheel_carries_the_hook_and_configs(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        timeout=600,
    )
    [wheel] = tmp_path.glob("s3prl_mi_probe-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert archive.read("s3prl_mi_probe.pth").decode() == "import s3prl_mi_probe.runner.hook\n"
    assert {
        "s3prl_mi_probe/runner/configs/mi_probe_phone.yaml",
        "s3prl_mi_probe/runner/configs/mi_probe_word.yaml",
        "s3prl_mi_probe/runner/configs/mi_probe_frame_phone.yaml",
        "s3prl_mi_probe/benchmark/protocols/librispeech-v1.yaml",
        "s3prl_mi_probe/benchmark/protocols/synthetic-v1.yaml",
    } <= names
    assert "s3prl_mi_probe/runner/plugin_tree/mi_probe/expert.py" in names


def test_this_installation_has_the_hook():
    pth = Path(sysconfig.get_paths()["purelib"]) / "s3prl_mi_probe.pth"
    assert pth.read_text() == "import s3prl_mi_probe.runner.hook\n"


@pytest.mark.parametrize("task", ["word", "phone", "frame_phone"])
def test_config_command_prints_installed_paths(capsys, task):
    main(["config", task])
    printed = Path(capsys.readouterr().out.strip())
    assert printed == config_path(task) and printed.is_file()
    assert f"task: {task} " in printed.read_text()
