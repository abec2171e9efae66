"""The ``downstream_expert`` config of ``mi_probe``: its keys and defaults, checked before any upstream work."""

import json
from dataclasses import fields
from pathlib import Path

from s3prl_mi_probe.corpus.control import control_labels
from s3prl_mi_probe.corpus.task import TaskOptions, build_task
from s3prl_mi_probe.probe.kinds import DEFAULT_MLP_WIDTH, FINETUNE, probe_kind
from s3prl_mi_probe.runner.dataset import resolve_num_workers

LOADER_KEYS = {"manifest": None, "train_batch_size": 8, "eval_batch_size": 8, "num_workers": "auto"}
PROBE_KEYS = {"probe": "linear", "mlp_width": DEFAULT_MLP_WIDTH, "control": None, "finetune_layers": None}


def task_options_from_config(config):
    """TaskOptions from the ``downstream_expert`` config; unknown keys are an error naming them."""
    option_names = {field.name for field in fields(TaskOptions)}
    unknown = sorted(set(config) - option_names - set(LOADER_KEYS) - set(PROBE_KEYS))
    if unknown:
        known = sorted(option_names | set(LOADER_KEYS) | set(PROBE_KEYS))
        raise ValueError(f"unknown downstream_expert config keys {unknown}; known: {known}")
    if not config.get("manifest"):
        raise ValueError("downstream_expert.manifest is required (a TSV: id, audio, alignment, split)")
    options = {name: value for name, value in config.items() if name in option_names}
    if "silence_labels" in options:
        options["silence_labels"] = tuple(options["silence_labels"])
    return TaskOptions(**options)


# A task built by check_expert_config before s3prl wrote anything, for the expert of the same config.
_checked_tasks = {}


def _config_key(downstream_expert):
    return json.dumps(downstream_expert, sort_keys=True, default=str)


def check_expert_config(downstream_expert):
    """Check a ``downstream_expert`` config as the expert will read it, before any upstream work.

    The keys, the task options, ``num_workers``, the probe kind, the manifest with every file it names
    (all problems at once) and the control key. Returns the config with its defaults, the TaskOptions, the
    task and the control labels (None without ``control``); ValueError (a ProblemsFound for the corpus)
    saying what is wrong.
    """
    config = {**LOADER_KEYS, **PROBE_KEYS, **downstream_expert}
    options = task_options_from_config(downstream_expert)
    resolve_num_workers(config["num_workers"])  # refuses a bad value before the corpus is read
    if config["probe"] != FINETUNE:
        probe_kind(config["probe"])
    task = _checked_tasks.pop(_config_key(downstream_expert), None) or build_task(Path(config["manifest"]), options)
    controls = None if config["control"] is None else control_labels(task, config["control"], options.seed)
    return config, options, task, controls


def check_before_run(downstream_expert):
    """:func:`check_expert_config`, keeping the task for the expert of this config that s3prl builds later in
    this process (it takes it instead of reading the corpus again)."""
    _, _, task, _ = check_expert_config(downstream_expert)
    _checked_tasks[_config_key(downstream_expert)] = task


def probed_layers(config, passed_layers):
    """The layers probed: every hidden state passed, or for ``finetune`` the ``finetune_layers`` (default all),
    each among those passed."""
    chosen = config["finetune_layers"] if config["probe"] == FINETUNE else None
    chosen = list(passed_layers) if chosen is None else [int(layer) for layer in chosen]
    missing = [layer for layer in chosen if layer not in passed_layers]
    if missing:
        raise ValueError(
            f"finetune_layers {missing} are not among the hidden states passed to mi_probe {passed_layers}; "
            f"drop -l to pass every layer"
        )
    return chosen
