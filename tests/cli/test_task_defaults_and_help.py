"""One set of task defaults for sweep, stats and the runner configs; ``--help`` shows every default."""

import argparse

import pytest
import yaml

from s3prl_mi_probe.cli import build_parser, main
from s3prl_mi_probe.cli.options import task_options
from s3prl_mi_probe.corpus.task import TaskOptions
from s3prl_mi_probe.corpus.task_kinds import TASK_KINDS
from s3prl_mi_probe.runner.expert_config import task_options_from_config
from s3prl_mi_probe.runner.shipped_configs import config_path


def parse(*argv):
    return build_parser().parse_args([str(arg) for arg in argv])


@pytest.fixture
def manifest(tmp_path):
    """A file where the parser wants an existing manifest (these tests only parse)."""
    path = tmp_path / "m.tsv"
    path.write_text("id\taudio\talignment\tsplit\n")
    return path


@pytest.mark.parametrize("task", list(TASK_KINDS))
def test_sweep_stats_and_the_runner_configs_take_the_same_task_defaults(task, manifest):
    expected = TaskOptions(task=task)
    defaults = TASK_KINDS[task].defaults  # the config's comment states the code's defaults
    assert {name: getattr(expected, name) for name in defaults} == defaults
    sweep = parse("sweep", "--upstream", "fbank", "--manifest", manifest, "--task", task, "--out", manifest.parent)
    stats = parse("stats", manifest, "--task", task)
    assert task_options(sweep) == expected and task_options(stats) == expected
    config_text = config_path(task).read_text()
    assert task_options_from_config(yaml.safe_load(config_text)["downstream_expert"]) == expected
    cap = "null" if defaults["max_classes"] is None else defaults["max_classes"]
    assert f"min_count {defaults['min_count']}" in config_text and f"max_classes {cap}" in config_text


def test_explicit_filters_override_the_task_defaults(manifest):
    args = parse(
        "sweep", "--upstream", "fbank", "--manifest", manifest, "--task", "word", "--out", manifest.parent,
        "--min-count", "3", "--max-classes", "all", "--no-fold-stress",
    )  # fmt: skip
    assert task_options(args) == TaskOptions(task="word", min_count=3, max_classes=None, fold_stress=False)
    assert task_options(parse("stats", manifest, "--fold-stress", "--max-classes", "40")) == TaskOptions(
        task="phone", max_classes=40, fold_stress=True
    )
    config = {"manifest": "m.tsv", "task": "word", "max_classes": None}
    assert task_options_from_config(config) == TaskOptions(task="word", max_classes=None)


def test_a_word_sweep_without_filters_uses_the_word_defaults(tmp_path, tone_manifest):
    # 14 training utterances, each word once per utterance: below the word task's min_count of 20.
    command = ["sweep", "--upstream", "fbank", "--manifest", tone_manifest, "--task", "word", "--out", tmp_path]
    message = main([str(arg) for arg in command])
    assert "min_count=20, max_classes=500" in message and not (tmp_path / "sweep.csv").exists()


def subcommand_parsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from subcommand_parsers(sub)


def test_help_shows_every_default(capsys):
    parser = build_parser()
    for sub in subcommand_parsers(parser):
        sub.format_help()  # every help string formats
        for action in sub._actions:
            shows_nothing = any(action.default is value for value in (None, False, argparse.SUPPRESS))
            if action.option_strings and not shows_nothing:
                assert action.help, f"{sub.prog} {action.option_strings[0]} has no help"
                assert "default" in sub._get_formatter()._get_help_string(action), (sub.prog, action.dest)
    sweep = parse_help(capsys, "sweep")
    for expected in ("(default: cpu)", "default per task: phone 5, word 20", "phone all, word 500", "--no-fold-stress"):
        assert expected in " ".join(sweep.split()), expected
    top = " ".join(parse_help(capsys).split())
    assert "espeak-ng" in top and "tone" not in top


def parse_help(capsys, *command):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out
