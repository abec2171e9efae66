"""Makes s3prl import and run on today's torchaudio, torch and huggingface_hub: only what the installed s3prl needs.

Each shim (:data:`SHIMS`) fixes one measured breakage, and is applied only where both hold: this
environment has the breakage (older versions are left untouched), and the installed s3prl's code
meets it (:meth:`Shim.s3prl_uses` reads the files of s3prl, 0.4.18 or ESPnet's fork, where the use
was found, without importing s3prl; no s3prl installed: no shim). Nothing installed is edited, and
nothing already there is replaced (a stand-in of the user's own, an attribute already present, a
module without a spec in ``sys.modules``):

* torchaudio >= 2.9 removed ``set_audio_backend``: added back as a no-op (one I/O path remains).
  s3prl 0.4.18 calls it; ESPnet's fork no longer does, and there it stays absent.
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

The torchaudio shims (:func:`apply_torchaudio`) need nothing but torchaudio: the import hook applies
them as soon as torchaudio is imported, so that processes which run s3prl code without importing s3prl
(a joblib/loky worker that unpickles an s3prl function by value) have them too. :func:`shim_report`
says which shims are active and why (``s3prl-mi-probe doctor``). :mod:`.quiet` holds the import
noise of old s3prl code on today's torch that is silenced.
"""

import argparse
import functools
import importlib.util
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass

from s3prl_mi_probe.toolkit.distribution import s3prl_location


@dataclass(frozen=True)
class Shim:
    """One breakage: how to see it here (``missing``), where s3prl meets it, and its fix (``install``).

    ``use`` is a regular expression for s3prl's code that meets the breakage (matched on lines that
    are not comments); ``sites`` are globs, relative to the ``s3prl`` package, of the files where it
    was found. ``install`` is idempotent and never replaces what is already there.
    """

    name: str
    problem: str
    use: str
    sites: tuple[str, ...]
    missing: Callable[[], bool]
    install: Callable[[], None]
    torchaudio_only: bool = True

    def s3prl_uses(self):
        """The files (relative to the installed s3prl package) whose code meets the breakage; [] without s3prl."""
        return _files_using(self.use, self.sites)

    def needed(self):
        """Whether this environment has the breakage and the installed s3prl meets it."""
        return self.missing() and bool(self.s3prl_uses())


@functools.cache
def _files_using(use, sites):
    root = s3prl_location()
    if root is None:
        return []
    pattern = re.compile(rf"^[^#\n]*?{use}", re.MULTILINE)
    files = sorted({path for site in sites for path in root.glob(site) if path.is_file()})
    return [path.relative_to(root).as_posix() for path in files if pattern.search(path.read_text(errors="replace"))]


def apply():
    """Install every shim that the installed versions and the installed s3prl need. Idempotent."""
    _apply(SHIMS)


def apply_torchaudio():
    """The torchaudio shims alone (they need nothing but torchaudio itself). Idempotent.

    Re-checked on every call: a module that the user put into ``sys.modules`` as
    ``torchaudio.sox_effects`` after importing torchaudio still gets the functions s3prl imports from it.
    """
    _apply([shim for shim in SHIMS if shim.torchaudio_only])


_installed = set()  # names of the shims installed in this process


def _apply(shims):
    for shim in shims:
        if shim.needed():
            shim.install()
            _installed.add(shim.name)


def shim_report():
    """Apply the shims needed here, then one dict per shim: ``name``, ``active`` (installed) and ``why`` in words."""
    apply()
    report = []
    for shim in SHIMS:
        uses = shim.s3prl_uses()
        active = shim.name in _installed
        if active:
            shown = ", ".join(uses[:3]) + (f" and {len(uses) - 3} more" if len(uses) > 3 else "")
            why = f"{shim.problem}; s3prl uses it in {shown}"
        elif not shim.missing():
            why = "not needed: this environment has it"
        elif s3prl_location() is None:
            why = "not needed: s3prl is not installed"
        else:
            why = "not needed: the installed s3prl does not use it"
        report.append({"name": shim.name, "active": active, "why": why})
    return report


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


def _torchaudio():
    import torchaudio

    return torchaudio


def _add_set_audio_backend():
    torchaudio = _torchaudio()
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


def _sox_effects_missing():
    """torchaudio has no sox_effects (>= 2.9), or the module in its place lacks a function s3prl imports."""
    if "torchaudio.sox_effects" in sys.modules:
        module = sys.modules["torchaudio.sox_effects"]
        return module is not None and not all(hasattr(module, name) for name in _SOX_EFFECTS_NAMES)
    return not (hasattr(_torchaudio(), "sox_effects") or module_exists("torchaudio.sox_effects"))


def _complete_sox_effects():
    torchaudio = _torchaudio()
    module = sys.modules.setdefault("torchaudio.sox_effects", _SOX_EFFECTS_STAND_IN)
    for name in _SOX_EFFECTS_NAMES:
        if not hasattr(module, name):
            setattr(module, name, _sox_effects_removed)
    if getattr(torchaudio, "sox_effects", _SOX_EFFECTS_STAND_IN) is _SOX_EFFECTS_STAND_IN:
        torchaudio.sox_effects = module  # ours, or the user's module that has since replaced ours


def _io_without_torchcodec():
    return hasattr(_torchaudio(), "load_with_torchcodec") and not module_exists("torchcodec")


def _serve_io_by_soundfile():
    torchaudio = _torchaudio()
    for name, stand_in in (("load", load), ("save", save)):
        if getattr(getattr(torchaudio, name, None), "__module__", None) == "torchaudio":
            setattr(torchaudio, name, stand_in)


def _add_info():
    torchaudio = _torchaudio()
    if not hasattr(torchaudio, "info"):
        torchaudio.info = info


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


def _weights_only_by_default():
    import torch

    return hasattr(torch.serialization, "add_safe_globals")


def _allow_s3prl_checkpoints():
    import torch

    torch.serialization.add_safe_globals([argparse.Namespace])


def _huggingface_hub_lacks(name):
    try:
        import huggingface_hub
    except ImportError:
        return False
    return not hasattr(huggingface_hub, name)


def _add_to_huggingface_hub(name, stand_in):
    import huggingface_hub

    if not hasattr(huggingface_hub, name):
        setattr(huggingface_hub, name, stand_in)


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


_AUDIO_LOADERS = ("upstream/*/audio.py", "dataio/dataset/load_audio.py", "dataset/common_pipes.py", "util/*.py")
_RUNNER = ("run_downstream.py", "downstream/runner.py")
SHIMS = (
    Shim(
        "torchaudio.set_audio_backend",
        "torchaudio >= 2.9 removed it",
        r"\btorchaudio\.set_audio_backend\(",
        ("run_downstream.py", *_AUDIO_LOADERS),
        lambda: not hasattr(_torchaudio(), "set_audio_backend"),
        _add_set_audio_backend,
    ),
    Shim(
        "torchaudio.sox_effects",
        "torchaudio >= 2.9 removed it (the stand-in raises when called)",
        r"\btorchaudio\.sox_effects\b",
        ("upstream/mos_prediction/expert.py", "downstream/*/*.py", *_AUDIO_LOADERS),
        _sox_effects_missing,
        _complete_sox_effects,
    ),
    Shim(
        "torchaudio.load/save by soundfile",
        "torchaudio >= 2.9 reads and writes through torchcodec, which is not installed",
        r"\btorchaudio\.(load|save)\(",
        _AUDIO_LOADERS,
        _io_without_torchcodec,
        _serve_io_by_soundfile,
    ),
    Shim(
        "torchaudio.info",
        "torchaudio >= 2.9 removed it",
        r"\btorchaudio\.info\(",
        _AUDIO_LOADERS,
        lambda: not hasattr(_torchaudio(), "info"),
        _add_info,
    ),
    Shim(
        "argparse.Namespace in torch's safe globals",
        "torch >= 2.6 loads checkpoints weights-only and s3prl's pickle an argparse.Namespace",
        r"\btorch\.load\((?:(?!weights_only)[^)])*\)",
        (*_RUNNER, "upstream/apc/expert.py"),
        _weights_only_by_default,
        _allow_s3prl_checkpoints,
        torchaudio_only=False,
    ),
    Shim(
        "huggingface_hub.HfFolder",
        "huggingface_hub >= 1 removed it",
        r"\bfrom huggingface_hub import [^\n]*\bHfFolder\b",
        _RUNNER,
        lambda: _huggingface_hub_lacks("HfFolder"),
        lambda: _add_to_huggingface_hub("HfFolder", _HfFolder),
        torchaudio_only=False,
    ),
    Shim(
        "huggingface_hub.Repository",
        "huggingface_hub >= 1 removed it (the stand-in raises when used)",
        r"\bfrom huggingface_hub import [^\n]*\bRepository\b",
        _RUNNER,
        lambda: _huggingface_hub_lacks("Repository"),
        lambda: _add_to_huggingface_hub("Repository", _Repository),
        torchaudio_only=False,
    ),
)
