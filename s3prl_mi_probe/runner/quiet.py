"""The noise of s3prl 0.4.18 on today's torch that is not the user's concern, silenced message by message.

Measured on ``s3prl-mi-probe sweep`` and ``python -m s3prl.run_downstream -d mi_probe``:

* ``FutureWarning: `torch.jit.script_method` is deprecated``: raised while s3prl's
  ``upstream/{decoar,decoar2,decoar_layers,ssast}/audio.py`` define their ``CMVN`` class (importing
  ``s3prl.hub`` imports them all). Silenced only while those modules run (:data:`IMPORT_WARNINGS`,
  applied by the import hook): the same warning raised for anyone else's code is still shown.
* ``FutureWarning: `torch.cuda.amp.autocast(args...)` is deprecated`` (and ``GradScaler`` with
  ``fp16``): raised by s3prl's runner at every training step; silenced for warnings attributed to
  ``s3prl.downstream.runner`` only.
* ``ESPnet is not installed, cannot use espnet_hubert upstream``: a logging warning of
  ``s3prl.upstream.espnet_hubert.expert`` at import, dropped by a filter on that logger alone.
  ``-u espnet_hubert`` without ESPnet still fails with s3prl's own message.

Every other warning and log line is left as it is.
"""

import contextlib
import warnings

_SCRIPT_METHOD = (FutureWarning, r"`torch\.jit\.script_method` is deprecated")
# module -> (category, message regex) of the warnings silenced while that module's body runs
IMPORT_WARNINGS = {
    f"s3prl.upstream.{name}.audio": _SCRIPT_METHOD for name in ("decoar", "decoar2", "decoar_layers", "ssast")
}
_RUNNER_AMP = r"`torch\.cuda\.amp\.(autocast|GradScaler)\(args\.\.\.\)` is deprecated"
_ESPNET_LOGGER = "s3prl.upstream.espnet_hubert.expert"
_ESPNET_NOTICE = "ESPnet is not installed, cannot use espnet_hubert upstream"
_silenced = False


@contextlib.contextmanager
def import_of(module_name):
    """Run the import of a module of :data:`IMPORT_WARNINGS` with its known deprecation warnings silenced."""
    category, message = IMPORT_WARNINGS[module_name]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=message, category=category)
        yield


def silence_s3prl_noise():
    """Silence s3prl's runner deprecations and its ESPnet notice (see the module docstring). Idempotent."""
    global _silenced
    if _silenced:
        return
    _silenced = True
    import logging

    warnings.filterwarnings("ignore", message=_RUNNER_AMP, category=FutureWarning, module=r"s3prl\.downstream\.runner$")
    logging.getLogger(_ESPNET_LOGGER).addFilter(_drop_espnet_notice)


def _drop_espnet_notice(record):
    return record.getMessage() != _ESPNET_NOTICE
