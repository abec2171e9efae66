"""Corpus recipes: turn a downloaded corpus into a manifest (and TextGrids with ``words``/``phones`` tiers).

One ``prepare_<corpus>()`` per module; each returns the path of the manifest it wrote.
"""
