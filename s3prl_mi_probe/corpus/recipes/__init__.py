"""Corpus recipes: turn a downloaded corpus into a manifest (and TextGrids with ``words``/``phones`` tiers).

One ``prepare_<corpus>(corpus_dir, output_dir, ...)`` per module; each returns the path of the manifest
it wrote and registers itself as ``s3prl-mi-probe prepare <corpus>`` (:mod:`.registry`).
"""
