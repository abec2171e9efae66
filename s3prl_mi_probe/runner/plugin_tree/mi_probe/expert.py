"""The module s3prl's runner imports for ``-d mi_probe``."""

from s3prl_mi_probe.runner.expert import DownstreamExpert

__all__ = ["DownstreamExpert"]
