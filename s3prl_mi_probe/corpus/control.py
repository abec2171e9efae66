"""Control tasks (Hewitt & Liang 2019): labels a representation can only predict by memorising.

A control label is a fixed random function of a *control key*: every distinct key value gets one
label, drawn from the train label distribution (seeded). Selectivity = accuracy on the real task
minus accuracy on the control task. Keys:

* ``segment``: the labels of each split, permuted across its segments. The control carries no
  information about anything in the audio: the zero-information reference.
* ``word_type`` (phone task): the word the phone lies in, from the TextGrid's ``words`` tier.
* ``speaker``: the manifest's speaker column.

Keying on the target itself (``word_type`` for the word task, ``phone`` for the phone task) is
refused: the control label would then be a function of the target, a coarsening of it, so the
probe could score on the control exactly what it learned for the task.
"""

from dataclasses import replace

import numpy as np

CONTROL_KEYS = ("segment", "word_type", "speaker")
_TARGET_KEY = {"phone": "phone", "word": "word_type"}


def check_control_key(key, task_name):
    """ValueError explaining why ``key`` cannot key a control for ``task_name``; silent when it can."""
    if key == _TARGET_KEY.get(task_name) or key in ("label", task_name):
        raise ValueError(
            f"control key {key!r} is the target of the {task_name} task: a control label keyed on the target "
            f"is a coarsening of it, so a probe scores on it what it learned for the task and selectivity "
            f"means nothing; key the control on one of "
            f"{', '.join(k for k in CONTROL_KEYS if k != _TARGET_KEY.get(task_name))}"
        )
    if key not in CONTROL_KEYS:
        raise ValueError(f"unknown control key {key!r}; expected one of {', '.join(CONTROL_KEYS)}")


def control_labels(task, key, seed=0):
    """Per split, the control label of every segment, in the order of ``task.splits[split]``.

    ValueError when the key is refused for this task or some utterances lack it (all listed).
    """
    check_control_key(key, task.options.task)
    rng = np.random.default_rng(seed)
    if key == "segment":
        return {split: rng.permutation(_split_labels(utterances)) for split, utterances in task.splits.items()}
    keys = {split: _split_keys(utterances, key) for split, utterances in task.splits.items()}
    missing = [
        f"{item.utterance.id} ({split})"
        for split, utterances in task.splits.items()
        for item, value in zip(utterances, _utterance_keys(utterances, key))
        if value is None
    ]
    if missing:
        source = "a 'words' tier in its TextGrid" if key == "word_type" else "a speaker in the manifest"
        raise ValueError(f"control key {key!r} needs {source}; missing for: {', '.join(missing)}")
    values = sorted({value for split_keys in keys.values() for value in split_keys})
    label_of = dict(zip(values, draw_key_labels(len(values), task.label_counts("train"), rng)))
    return {
        split: np.array([label_of[value] for value in split_keys], dtype=np.int64) for split, split_keys in keys.items()
    }


def draw_key_labels(num_values, train_counts, rng):
    """The control label of each of ``num_values`` key values (in a fixed order), drawn once with ``rng``
    from the train label distribution ``train_counts`` (counts per class)."""
    train_counts = np.asarray(train_counts, dtype=np.float64)
    return rng.choice(len(train_counts), size=num_values, p=train_counts / train_counts.sum())


def control_task(task, controls):
    """A copy of ``task`` whose segments carry the control labels ``controls`` (from :func:`control_labels`)."""
    splits = {}
    for split, items in task.splits.items():
        per_utterance = np.split(controls[split], np.cumsum([len(item.labels) for item in items])[:-1])
        splits[split] = [replace(item, labels=labels) for item, labels in zip(items, per_utterance)]
    return replace(task, splits=splits)


def _split_labels(utterances):
    return np.concatenate([item.labels for item in utterances]).astype(np.int64)


def _utterance_keys(utterances, key):
    """Per utterance: its segments' key values (array), or None when the utterance has none."""
    if key == "speaker":
        return [
            None if item.utterance.speaker is None else np.full(len(item.labels), item.utterance.speaker, dtype=object)
            for item in utterances
        ]
    return [item.words for item in utterances]


def _split_keys(utterances, key):
    return [value for keys in _utterance_keys(utterances, key) if keys is not None for value in keys]
