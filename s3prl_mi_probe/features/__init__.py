"""Stage 2, features: every hidden state of an s3prl upstream, pooled per segment, into an on-disk cache.

Takes a TaskData and an upstream spec (an s3prl hub name, or ``NAME=CKPT``), gives a
:class:`~s3prl_mi_probe.features.cache.LayerCache`: one memory-mapped array per layer, rows in task
order, resumable and shardable across processes. Pooling and batching helpers live here too.
"""
