"""s3prl's run_downstream as a new user types it: the config it gets without ``-c``, the local rank, loader workers,
refusals before s3prl writes anything (the run without ``-c`` or ``--device`` itself: test_runner_e2e)."""

import os
import sys

import pytest
from s3prl_runner import refusal_before_training, run_downstream, short_run_overrides

from s3prl_mi_probe.runner.command_line import complete_run_downstream_arguments
from s3prl_mi_probe.runner.dataset import MAX_AUTO_WORKERS, resolve_num_workers
from s3prl_mi_probe.runner.shipped_configs import config_path
from tests.support.tones import write_tone_corpus


@pytest.mark.parametrize(
    ("arguments", "task"),
    [
        (["-m", "train", "-d", "mi_probe", "-p", "exp"], "phone"),
        (
            [
                "-m",
                "train",
                "-d",
                "mi_probe",
                "-o",
                "config.runner.total_steps=5,,config.downstream_expert.task='word'",
            ],
            "word",
        ),
        (["-m", "train", "-d", "mi_probe", "-o", "config.downstream_expert.task=frame_phone"], "frame_phone"),
        (["-m", "train", "-d", "mi_probe", "-o", "config.downstream_expert.task=nonsense"], "phone"),
        (["-m", "train", "-d", "mi_probe", "-c", "mine.yaml"], None),
        (["-m", "evaluate", "-e", "exp/best-states-dev.ckpt"], None),
        (["-m", "train", "-d", "emotion"], None),
    ],
)
def test_which_command_lines_get_the_shipped_config(arguments, task, capsys):
    argv = ["run_downstream.py", *arguments]
    complete_run_downstream_arguments(argv, environ={})
    if task is None:
        assert argv == ["run_downstream.py", *arguments]
        assert capsys.readouterr().out == ""
    else:
        path = str(config_path(task))
        assert argv == ["run_downstream.py", *arguments, "-c", path]
        assert capsys.readouterr().out == f"[mi_probe] no -c given: using the shipped {task} config {path}\n"


@pytest.mark.parametrize(
    ("arguments", "environ", "expected"),
    [
        (["--local-rank=1"], {"LOCAL_RANK": "1", "WORLD_SIZE": "2"}, ["--local_rank=1"]),  # torch.distributed.launch
        (["--local-rank", "1"], {}, ["--local_rank", "1"]),
        ([], {"LOCAL_RANK": "1", "WORLD_SIZE": "2"}, ["--local_rank", "1"]),  # torchrun
        (["--local_rank", "0"], {"LOCAL_RANK": "1", "WORLD_SIZE": "2"}, ["--local_rank", "0"]),
        ([], {"LOCAL_RANK": "0", "WORLD_SIZE": "1"}, []),
        ([], {}, []),
    ],
)
def test_local_rank_as_s3prl_spells_it(arguments, environ, expected):
    argv = ["run_downstream.py", "-m", "evaluate", "-e", "exp/best-states-dev.ckpt", *arguments]
    complete_run_downstream_arguments(argv, environ=environ)
    assert argv[5:] == expected


def test_other_programs_command_lines_are_left_alone():
    before = list(sys.argv)
    complete_run_downstream_arguments()
    assert sys.argv == before


def test_num_workers_auto_follows_the_cpus_and_numbers_pass_through():
    cpus = len(os.sched_getaffinity(0))
    assert resolve_num_workers("auto") == max(0, min(MAX_AUTO_WORKERS, cpus - 1))
    assert resolve_num_workers("auto", processes=cpus) == 0  # one CPU per DDP process: none to spare
    assert resolve_num_workers(0) == 0 and resolve_num_workers(6) == 6
    for bad in ("four", -1, 2.5, True, None):
        with pytest.raises(ValueError, match="num_workers must be a number >= 0 or auto"):
            resolve_num_workers(bad)


def test_a_bad_num_workers_stops_the_run_with_one_line(tmp_path, tone_manifest):
    expdir = tmp_path / "exp"
    result = run_downstream(
        *("-m", "train", "-u", "fbank", "-d", "mi_probe", "-p", str(expdir)),
        *("-o", short_run_overrides(tone_manifest, downstream_expert__num_workers="four")),
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "[mi_probe] downstream_expert.num_workers must be a number >= 0 or auto, not 'four'"
    )
    assert "Traceback" not in result.stderr
    assert not expdir.exists()  # refused before s3prl made the experiment folder


@pytest.mark.parametrize("problem", ["missing", "bad file"])
def test_a_missing_or_bad_manifest_stops_the_run_before_s3prl_writes_anything(tmp_path, problem):
    manifest = write_tone_corpus(tmp_path / "corpus", num_utterances=6)
    if problem == "missing":
        manifest, reason = tmp_path / "nope" / "manifest.tsv", "manifest.tsv: manifest file not found"
    else:
        (tmp_path / "corpus" / "utt002.TextGrid").write_text("")
        reason = "malformed TextGrid"
    message = refusal_before_training(tmp_path / "exp", manifest, "-u", "fbank")
    header, problem_line = message.splitlines()
    assert header == f"[mi_probe] 1 problem(s) found in {manifest}:" and reason in problem_line
