"""The ``-d mi_probe`` downstream of s3prl's own runner.

The import hook (:mod:`.hook`, started by the ``s3prl_mi_probe.pth`` file at interpreter start)
installs the toolkit's compatibility layer (:mod:`s3prl_mi_probe.toolkit`) and applies the Runner
patches (:mod:`.patches`) when s3prl's runner is imported. The expert (:mod:`.expert`), its dataset,
the all-layer featurizer and the shipped configs (``configs/``) are what the runner runs. The core
stages never import this package. Importing it is cheap (no torch).
"""

from s3prl_mi_probe.runner.hook import activate

__all__ = ["activate"]
