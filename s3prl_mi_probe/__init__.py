"""s3prl-mi-probe: layer-wise mutual-information bounds and margins for s3prl upstreams.

The pipeline, one package per stage: ``corpus`` -> ``features`` -> ``probe`` -> ``analyses`` -> ``report``
(``metrics`` is the leaf they share, ``sweep`` the orchestrator, ``finetune`` the probe that needs the
upstream), with ``runner`` (the ``-d mi_probe`` downstream of s3prl's runner), ``cli`` and ``demo`` on
top. Every use of s3prl goes through ``toolkit`` (its compatibility layer and the pieces taken from
it). Importing this package is cheap (no torch): the s3prl integration is applied by an import hook
(:mod:`s3prl_mi_probe.runner.hook`) or explicitly with :func:`s3prl_mi_probe.runner.activate`.
"""

__version__ = "0.1.0"

_LAZY_PROBE_API = ("probe_layers", "fit_layer_probes", "LayerProbes")


def __getattr__(name):
    """The probe API (``probe_layers``, ``fit_layer_probes``, ``LayerProbes``), imported on first use."""
    if name in _LAZY_PROBE_API:
        from s3prl_mi_probe.probe import train

        return getattr(train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
