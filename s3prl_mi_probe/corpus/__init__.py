"""Stage 1, the corpus: from a manifest (audio + TextGrids) to the labelled segments of a task.

Takes a manifest TSV (``id, audio, alignment, split[, speaker]``), gives a checked, filtered
:class:`~s3prl_mi_probe.corpus.task.TaskData` (segments per split, classes, what was dropped) or one
error listing every problem. ``recipes/`` turns downloaded corpora into manifests; ``synthetic/``
makes corpora (espeak-ng speech) that need no download. Imports nothing of the later stages.
"""
