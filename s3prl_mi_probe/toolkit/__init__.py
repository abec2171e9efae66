"""Every use of s3prl, in one place: the seam that a new s3prl version or ESPnet's fork touches.

* :mod:`.distribution`: which distribution provides s3prl (``s3prl`` or ``espnet-s3prl``), where it is.
* :mod:`.compat`, :mod:`.quiet`: the compatibility layer (shims for today's torchaudio, torch and
  huggingface_hub; s3prl's known noise silenced), applied by :mod:`.activation`: now with
  :func:`activate`, or by the import hook when torchaudio or s3prl is imported.
* What the rest of the package takes from s3prl, each handed out after :func:`activate`:
  upstreams by hub name (:mod:`.hub`), model classes (:mod:`.models`: the transformer families that
  fine-tuning copies, HuBERT, APC), a runner config as s3prl reads it (:mod:`.runner_config`), and
  s3prl's APC pretraining script (:mod:`.run_pretrain`).

Imports nothing else of this package; importing it is cheap (no torch, no s3prl).
"""

from s3prl_mi_probe.toolkit.activation import activate

__all__ = ["activate"]
