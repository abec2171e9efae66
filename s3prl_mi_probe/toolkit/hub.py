"""Upstreams through s3prl's hub: the same entries as ``run_downstream.py -u NAME``."""

from s3prl_mi_probe.toolkit.activation import activate
from s3prl_mi_probe.toolkit.distribution import require_s3prl


def _hub():
    require_s3prl()
    activate()
    from s3prl import hub

    return hub


def hub_names():
    """The names of s3prl's hub entries; S3prlMissing (saying how to install it) without s3prl."""
    return [name for name in dir(_hub()) if not name.startswith("_")]


def load_upstream(name, checkpoint=None):
    """Build hub entry ``name`` as s3prl's runner does (``checkpoint`` is its ``-k``).

    Raises what the entry raises (OSError when it cannot download or read the weights).
    """
    return getattr(_hub(), name)(ckpt=checkpoint, model_config=None, refresh=False)
