"""Makes s3prl 0.4.18 import and run on today's torchaudio, torch and huggingface_hub.

Measured breakages, each fixed only where the installed version has it (older versions are left
untouched), without editing any installed file, and never over what is already there (a stand-in of
the user's own, an attribute already present, a module without a spec in ``sys.modules``):

* torchaudio >= 2.9 removed ``set_audio_backend``: added back as a no-op (one I/O path remains).
* torchaudio >= 2.9 removed ``torchaudio.sox_effects``: a stand-in module whose functions raise a
  clear error when *called*, so that modules importing it still import. A module the user put in
  ``sys.modules`` under that name is kept; only the functions s3prl imports from it and it lacks
  are added (the same raising stand-ins).
* torchaudio >= 2.9 routes ``load``/``save`` through torchcodec and dropped ``info``: when
  torchcodec is not installed (torchaudio's own ``load``/``save`` could only fail) they are served
  by soundfile instead; a ``load``/``save`` that is not torchaudio's own is left alone.
* torch >= 2.6 loads checkpoints weights-only: s3prl's own checkpoints pickle an
  ``argparse.Namespace`` (``Args``), so it is added to torch's safe globals. The weights-only
  default stays on for everything else.
* huggingface_hub >= 1 removed ``HfFolder`` and ``Repository``, which s3prl's runner imports; they
  are added back as stand-ins (only pushing results to the Hub needs them, and that then fails
  with a clear message).

The torchaudio part (:func:`apply_torchaudio`) needs nothing but torchaudio: the import hook applies
it as soon as torchaudio is imported, so that processes which run s3prl code without importing s3prl
(a joblib/loky worker that unpickles an s3prl function by value) have it too. :mod:`.quiet` holds the
import noise of old s3prl code on today's torch that is silenced.
"""

import argparse
import importlib.util
import sys
import types
from dataclasses import dataclass

_applied = False
_torchaudio_applied = False


def apply():
    """Install every shim that the installed versions need. Idempotent."""
    global _applied
    import torchaudio

    apply_torchaudio(torchaudio)
    if _applied:
        return
    _applied = True
    _allow_s3prl_checkpoints()
    _add_huggingface_hub_stand_ins()


def apply_torchaudio(torchaudio):
    """The torchaudio shims alone (needs nothing but torchaudio itself). Idempotent.

    The sox_effects stand-in is re-checked on every call: a module that the user put into
    ``sys.modules`` after importing torchaudio still gets the functions s3prl imports from it.
    """
    global _torchaudio_applied
    _complete_sox_effects(torchaudio)
    if _torchaudio_applied:
        return
    _torchaudio_applied = True
    _add_set_audio_backend(torchaudio)
    if hasattr(torchaudio, "load_with_torchcodec") and not module_exists("torchcodec"):
        for name, stand_in in (("load", load), ("save", save)):
            if getattr(getattr(torchaudio, name, None), "__module__", None) == "torchaudio":
                setattr(torchaudio, name, stand_in)
    if not hasattr(torchaudio, "info"):
        torchaudio.info = info


def module_exists(name):
    """Whether ``import name`` would find a module; never raises.

    ``importlib.util.find_spec`` raises ValueError for a module in ``sys.modules`` whose
    ``__spec__`` is None, which is what a ``types.ModuleType(...)`` stand-in is.
    """
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _add_set_audio_backend(torchaudio):
    if not hasattr(torchaudio, "set_audio_backend"):

        def set_audio_backend(backend=None):
            """No-op: torchaudio >= 2.9 has a single I/O path (here: soundfile or torchcodec)."""

        torchaudio.set_audio_backend = set_audio_backend
    if not hasattr(torchaudio, "get_audio_backend"):
        torchaudio.get_audio_backend = lambda: "soundfile"


def _sox_effects_removed(*args, **kwargs):
    raise RuntimeError(
        "torchaudio.sox_effects was removed in torchaudio 2.9 and s3prl-mi-probe cannot provide it. "
        "The s3prl code path you are running applies sox effects; use torchaudio < 2.9 for it."
    )


# What s3prl imports from torchaudio.sox_effects.
_SOX_EFFECTS_NAMES = ("apply_effects_tensor", "apply_effects_file", "effect_names")
_SOX_EFFECTS_STAND_IN = types.ModuleType(
    "torchaudio.sox_effects", "Stand-in: sox effects are gone in torchaudio >= 2.9."
)


def _complete_sox_effects(torchaudio):
    if "torchaudio.sox_effects" in sys.modules:
        module = sys.modules["torchaudio.sox_effects"]
        if module is None:
            return  # the import is blocked on purpose
    elif hasattr(torchaudio, "sox_effects") or module_exists("torchaudio.sox_effects"):
        return  # torchaudio < 2.9: the real module, not imported yet
    else:
        module = _SOX_EFFECTS_STAND_IN
        sys.modules["torchaudio.sox_effects"] = module
    for name in _SOX_EFFECTS_NAMES:
        if not hasattr(module, name):
            setattr(module, name, _sox_effects_removed)
    if getattr(torchaudio, "sox_effects", _SOX_EFFECTS_STAND_IN) is _SOX_EFFECTS_STAND_IN:
        torchaudio.sox_effects = module  # ours, or the user's module that has since replaced ours


@dataclass
class AudioMetaData:
    """What ``torchaudio.info`` used to return."""

    sample_rate: int
    num_frames: int
    num_channels: int
    bits_per_sample: int
    encoding: str


_BITS_OF_SUBTYPE = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32, "DOUBLE": 64}


def info(uri, format=None, **kwargs):
    """``torchaudio.info`` served by soundfile."""
    import soundfile

    meta = soundfile.info(uri)
    return AudioMetaData(
        sample_rate=meta.samplerate,
        num_frames=meta.frames,
        num_channels=meta.channels,
        bits_per_sample=_BITS_OF_SUBTYPE.get(meta.subtype, 0),
        encoding=meta.subtype,
    )


def load(uri, frame_offset=0, num_frames=-1, normalize=True, channels_first=True, format=None, **kwargs):
    """``torchaudio.load`` served by soundfile: float32 in [-1, 1] (or raw ints when not normalize)."""
    import soundfile
    import torch

    dtype = "float32" if normalize else _raw_dtype(soundfile.info(uri).subtype)
    data, sample_rate = soundfile.read(uri, start=frame_offset, frames=num_frames, dtype=dtype, always_2d=True)
    waveform = torch.from_numpy(data)
    return (waveform.T.contiguous() if channels_first else waveform), sample_rate


def _raw_dtype(subtype):
    return {"PCM_16": "int16", "PCM_32": "int32", "DOUBLE": "float64"}.get(subtype, "float32")


def save(uri, src, sample_rate, channels_first=True, format=None, encoding=None, bits_per_sample=None, **kwargs):
    """``torchaudio.save`` served by soundfile (16-bit PCM unless the tensor is float and asked otherwise)."""
    import soundfile

    data = src.detach().cpu().numpy()
    if channels_first:
        data = data.T
    subtype = None
    if bits_per_sample is not None:
        subtype = {8: "PCM_U8", 16: "PCM_16", 24: "PCM_24"}.get(
            bits_per_sample, "PCM_32" if encoding == "PCM_S" else "FLOAT"
        )
    soundfile.write(uri, data, sample_rate, subtype=subtype, format=format)


def _allow_s3prl_checkpoints():
    import torch

    if hasattr(torch.serialization, "add_safe_globals"):
        torch.serialization.add_safe_globals([argparse.Namespace])


def _add_huggingface_hub_stand_ins():
    try:
        import huggingface_hub
    except ImportError:
        return
    if not hasattr(huggingface_hub, "HfFolder"):
        huggingface_hub.HfFolder = _HfFolder
    if not hasattr(huggingface_hub, "Repository"):
        huggingface_hub.Repository = _Repository


class _HfFolder:
    """Stand-in for ``huggingface_hub.HfFolder`` (removed in huggingface_hub 1.0)."""

    @staticmethod
    def get_token():
        import huggingface_hub

        return huggingface_hub.get_token()

    @staticmethod
    def save_token(token):
        import huggingface_hub

        huggingface_hub.login(token=token)


class _Repository:
    """Stand-in for ``huggingface_hub.Repository`` (removed in huggingface_hub 1.0)."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError(
            "s3prl's --push_to_hf_hub needs huggingface_hub.Repository, removed in huggingface_hub 1.0; "
            "install huggingface_hub<1 to push results to the Hub."
        )
