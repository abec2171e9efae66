"""Control tasks (Hewitt & Liang 2019): labels a representation can only predict by memorising.

A control label is a fixed random function of a *control key*: every distinct key value gets one
label, drawn from the train label distribution (seeded). Selectivity = accuracy on the real task
minus accuracy on the control task. Keys:

* ``segment``: the labels of each split, permuted across its segments. The control carries no
  information about anything in the audio: the zero-information reference.
* ``word_type`` (phone task): the word the phone lies in, from the TextGrid's ``words`` tier.
* ``speaker``: the manifest's speaker column.

Only key values seen in train get a label: a probe can learn the label of a key value only from
training segments that carry it, so a dev or test segment whose key value never occurs in train has
no learnable control label. Such segments get :data:`UNSEEN` and the control is scored without them
(docs/method.md, "Control tasks and selectivity"). A dev or test split left with no scored segment
(a speaker control on speaker-disjoint splits) is refused.

Keying on the target itself (``word_type`` for the word task, ``phone`` for the phone task) is
refused: the control label would then be a function of the target, a coarsening of it, so the
probe could score on the control exactly what it learned for the task.
"""

from dataclasses import replace

import numpy as np

CONTROL_KEYS = ("segment", "word_type", "speaker")
UNSEEN = -1  # the control label of a dev/test segment whose key value never occurs in train
_TARGET_KEY = {"phone": "phone", "word": "word_type"}
_KEY_NOUN = {"word_type": "word", "speaker": "speaker"}


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

    Dev/test segments whose key value never occurs in train are :data:`UNSEEN`. ValueError when the
    key is refused for this task, some utterances lack it (all listed), or a dev or test split has no
    segment whose key value occurs in train (the control could not be learned there at all).
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
    return keyed_control_labels(keys, task.label_counts("train"), rng, key)


def keyed_control_labels(keys, train_counts, rng, key):
    """Per split, the control label of each segment from its key value (``keys``: per split, one value per
    segment): each value seen in train gets one label drawn with ``rng`` from the train label
    distribution ``train_counts``; values never seen in train get :data:`UNSEEN`. ValueError when a
    dev or test split is left without a scored segment."""
    keys = {split: np.asarray(split_keys) for split, split_keys in keys.items()}
    train_values = np.unique(keys["train"])
    drawn = draw_key_labels(train_values.size, train_counts, rng)
    controls = {}
    for split, split_keys in keys.items():
        if not split_keys.size:
            controls[split] = np.empty(0, dtype=np.int64)
            continue
        position = np.minimum(np.searchsorted(train_values, split_keys), train_values.size - 1)
        seen = train_values[position] == split_keys
        controls[split] = np.where(seen, drawn[position], UNSEEN).astype(np.int64)
    _refuse_unlearnable(key, keys, controls)
    return controls


def unscored_segments(controls):
    """Per split, how many segments the control is not scored on (their key value never occurs in train)."""
    return {split: int((labels == UNSEEN).sum()) for split, labels in controls.items()}


def _refuse_unlearnable(key, keys, controls):
    """ValueError when a held-out split has no segment whose key value occurs in train, with the counts."""
    noun = _KEY_NOUN.get(key, f"{key!r} value")
    empty = [split for split, labels in controls.items() if split != "train" and not (labels != UNSEEN).any()]
    if not empty:
        return
    counts = "; ".join(
        f"{split}: {np.unique(keys[split]).size} {noun}(s), "
        f"{np.setdiff1d(keys[split], keys['train']).size} of them not in train ({len(keys[split])} segments)"
        for split in empty
    )
    raise ValueError(
        f"control key {key!r}: no {' and no '.join(empty)} segment has a {noun} that occurs in train ({counts}); "
        f"a control label is a random function of the {noun}, learnable only for {noun}s seen in training, so on "
        f"held-out {noun}s the control would score chance by construction and selectivity would mean nothing; "
        f"key the control on 'segment' instead"
        + (" (or 'word_type' for the phone task)" if key == "speaker" else "")
        + f", or use splits that share {noun}s"
    )


def per_utterance(task, controls):
    """``controls`` (per split, one label per segment) cut into one array per utterance of ``task``."""
    return {
        split: np.split(controls[split], np.cumsum([len(item.labels) for item in items])[:-1])
        for split, items in task.splits.items()
    }


def draw_key_labels(num_values, train_counts, rng):
    """The control label of each of ``num_values`` key values (in a fixed order), drawn once with ``rng``
    from the train label distribution ``train_counts`` (counts per class)."""
    train_counts = np.asarray(train_counts, dtype=np.float64)
    return rng.choice(len(train_counts), size=num_values, p=train_counts / train_counts.sum())


def control_task(task, controls):
    """A copy of ``task`` whose segments carry the control labels ``controls`` (from :func:`control_labels`).

    Segments the control is not scored on (:data:`UNSEEN`) are left out, and utterances left empty.
    """
    splits = {}
    for split, labels in per_utterance(task, controls).items():
        splits[split] = [
            _scored_segments(item, utterance_labels)
            for item, utterance_labels in zip(task.splits[split], labels)
            if (utterance_labels != UNSEEN).any()
        ]
    return replace(task, splits=splits)


def _scored_segments(item, labels):
    keep = labels != UNSEEN
    if keep.all():
        return replace(item, labels=labels)
    words = None if item.words is None else item.words[keep]
    return replace(item, starts=item.starts[keep], ends=item.ends[keep], labels=labels[keep], words=words)


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
