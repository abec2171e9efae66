"""The noise of s3prl 0.4.18 on today's torch that is not the user's concern, silenced message by message.

Measured on ``s3prl-mi-probe sweep`` and ``python -m s3prl.run_downstream -d mi_probe``:

* ``FutureWarning: `torch.jit.script_method` is deprecated``: raised while s3prl's
  ``upstream/{decoar,decoar2,decoar_layers,ssast}/audio.py`` define their ``CMVN`` class (importing
  ``s3prl.hub`` imports them all). Silenced only while those modules run (:data:`IMPORT_WARNINGS`,
  applied by the import hook): the same warning raised for anyone else's code is still shown.
* ``FutureWarning: `torch.cuda.amp.autocast(args...)` is deprecated`` (and ``GradScaler`` with
  ``fp16``): raised by s3prl's runner at every training step; silenced for warnings attributed to
  ``s3prl.downstream.runner`` only.
* ``FutureWarning: `torch.nn.utils.weight_norm` is deprecated``: raised whenever s3prl builds a
  wav2vec 2.0 / HuBERT / WavLM / data2vec-style upstream (its positional convolution). torch raises it
  from its own module whoever the caller is, so ``torch.nn.utils.weight_norm`` is wrapped: called
  from a module of s3prl, the warning is silenced; called from anywhere else, it is shown as before.
* ``FutureWarning: Positional args are being deprecated`` (``nn.Module.state_dict``): raised by
  s3prl's data2vec model; silenced for warnings attributed to s3prl's modules only.
* ``ESPnet is not installed, cannot use espnet_hubert upstream``: a logging warning of
  ``s3prl.upstream.espnet_hubert.expert`` at import, dropped by a filter on that logger alone.
  ``-u espnet_hubert`` without ESPnet still fails with s3prl's own message.

Every other warning and log line is left as it is.
"""

import contextlib
import functools
import sys
import warnings

_SCRIPT_METHOD = (FutureWarning, r"`torch\.jit\.script_method` is deprecated")
# module -> (category, message regex) of the warnings silenced while that module's body runs
IMPORT_WARNINGS = {
    f"s3prl.upstream.{name}.audio": _SCRIPT_METHOD for name in ("decoar", "decoar2", "decoar_layers", "ssast")
}
_RUNNER_AMP = r"`torch\.cuda\.amp\.(autocast|GradScaler)\(args\.\.\.\)` is deprecated"
_WEIGHT_NORM = r"`torch\.nn\.utils\.weight_norm` is deprecated"
_STATE_DICT_POSITIONAL = r"Positional args are being deprecated, use kwargs instead"
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
    """Silence the noise of s3prl's code listed in the module docstring. Idempotent; needs torch."""
    global _silenced
    if _silenced:
        return
    _silenced = True
    import logging

    import torch

    warnings.filterwarnings("ignore", message=_RUNNER_AMP, category=FutureWarning, module=r"s3prl\.downstream\.runner$")
    warnings.filterwarnings("ignore", message=_STATE_DICT_POSITIONAL, category=FutureWarning, module=r"s3prl\.")
    torch.nn.utils.weight_norm = quiet_when_s3prl_calls(torch.nn.utils.weight_norm, FutureWarning, _WEIGHT_NORM)
    logging.getLogger(_ESPNET_LOGGER).addFilter(_drop_espnet_notice)


def quiet_when_s3prl_calls(function, category, message):
    """``function`` that silences one warning when its caller is a module of s3prl, and only then."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if not sys._getframe(1).f_globals.get("__name__", "").startswith("s3prl."):
            return function(*args, **kwargs)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=message, category=category)
            return function(*args, **kwargs)

    return wrapper


def _drop_espnet_notice(record):
    return record.getMessage() != _ESPNET_NOTICE
