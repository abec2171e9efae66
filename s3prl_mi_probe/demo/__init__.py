"""The offline demo: its job (``s3prl-mi-probe demo``), random upstreams, and the pretraining of its APC.

``models/`` holds the small checkpoints it ships; :mod:`.pretrain` rebuilds them with s3prl's own
pretraining recipe; :mod:`.random_upstreams` writes an untrained HuBERT in s3prl's checkpoint format.
"""
