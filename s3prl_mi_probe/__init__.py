"""s3prl-mi-probe: layer-wise mutual-information bounds and margins for s3prl upstreams.

Importing this package is cheap (no torch): the s3prl integration is applied by import hooks
(see ``_bootstrap.py``) or explicitly with :func:`s3prl_mi_probe.registry.activate`.
"""

__version__ = "0.1.0"

_LAZY_PROBE_API = ("probe_layers", "fit_layer_probes")


def __getattr__(name):
    """``probe_layers`` and ``fit_layer_probes`` from :mod:`s3prl_mi_probe.probe.train`, imported on first use."""
    if name in _LAZY_PROBE_API:
        from s3prl_mi_probe.probe import train

        return getattr(train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
