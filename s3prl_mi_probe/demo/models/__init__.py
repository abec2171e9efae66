"""Small speech models shipped for the offline demo: see README.md here.

``apc_synth.ckpt`` is a 3-layer APC pretrained with s3prl's own ``run_pretrain.py`` on a synthetic
espeak-ng corpus (rebuild it with ``python -m s3prl_mi_probe.demo.pretrain``); ``apc_random.ckpt`` is
the same architecture randomly initialised, the control. Both load with s3prl's ``apc_local``.
"""

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
