"""s3prl-mi-probe: layer-wise mutual-information bounds and margins for s3prl upstreams.

Importing this package is cheap (no torch): the s3prl integration is applied by import hooks
(see ``_bootstrap.py``) or explicitly with :func:`s3prl_mi_probe.registry.activate`.
"""

__version__ = "0.1.0"
