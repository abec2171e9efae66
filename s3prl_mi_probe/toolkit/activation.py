"""Applying the compatibility layer: now (:func:`activate`), or when torchaudio or s3prl is first imported.

The import hook is a finder on ``sys.meta_path`` that waits for a few module names and runs
functions around their import. It imports nothing heavy (the ``s3prl_mi_probe.pth`` line installs
it at interpreter start, through :mod:`s3prl_mi_probe.runner.hook`). Its own watches:

* ``torchaudio``: the torchaudio shims that the installed s3prl needs, right after torchaudio is
  imported. Not only s3prl needs them: a worker process (joblib/loky, multiprocessing spawn) that
  unpickles an s3prl function *by value*, as ``s3prl.util.audio_info.get_audio_info(...,
  num_workers=N)`` ships it, imports the modules that function names (torchaudio), never s3prl.
* ``s3prl``: the remaining shims (:mod:`.compat`) and the noise filters (:mod:`.quiet`), before
  s3prl's own code runs.
* the s3prl modules of :data:`.quiet.IMPORT_WARNINGS`: their import runs with their known
  deprecation warnings silenced.

Others add theirs with :func:`watch` (the ``-d mi_probe`` plugin: ``s3prl.downstream`` and its
runner). Set ``S3PRL_MI_PROBE_DISABLE=1`` to keep the hook off.
"""

import contextlib
import importlib
import importlib.abc
import os
import sys

from s3prl_mi_probe.toolkit import quiet  # stdlib only: contextlib, warnings


def _after_torchaudio(module):
    from s3prl_mi_probe.toolkit import compat

    compat.apply_torchaudio()


def _before_s3prl(module):
    from s3prl_mi_probe.toolkit import compat

    compat.apply()
    quiet.silence_s3prl_noise()


# module name -> (called before the module body runs, called after it ran, context its body runs in)
_WATCHED = {
    "torchaudio": (None, _after_torchaudio, None),
    "s3prl": (_before_s3prl, None, None),
    **dict.fromkeys(quiet.IMPORT_WARNINGS, (None, None, quiet.import_of)),
}


def watch(name, before=None, after=None, context=None):
    """When module ``name`` is imported: ``before(module)`` ahead of its body, the body within ``context(name)``,
    then ``after(module)``. Takes effect once the hook is installed (:func:`install_import_hook`)."""
    _WATCHED[name] = (before, after, context)


class _HookedLoader(importlib.abc.Loader):
    """Wraps a module's real loader and runs the watcher's functions around its ``exec_module``."""

    def __init__(self, loader, before, after, context):
        self._loader = loader
        self._before = before
        self._after = after
        self._context = context

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        if self._before:
            self._before(module)
        with self._context(module.__name__) if self._context else contextlib.nullcontext():
            self._loader.exec_module(module)
        if self._after:
            self._after(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class S3prlImportHook(importlib.abc.MetaPathFinder):
    """Finds the watched modules with the other finders and wraps their loaders."""

    def find_spec(self, fullname, path, target=None):
        hooks = _WATCHED.get(fullname)
        if hooks is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _HookedLoader(spec.loader, *hooks)
                return spec
        return None


def install_import_hook():
    """Put the hook first on ``sys.meta_path`` (once), unless disabled by the environment."""
    if os.environ.get("S3PRL_MI_PROBE_DISABLE", "") not in ("", "0"):
        return
    if not any(isinstance(finder, S3prlImportHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, S3prlImportHook())


def activate():
    """The compatibility layer, now: the import hook, every shim the installed s3prl needs, the noise filters.

    Safe to call any number of times, before or after s3prl is imported; every function of this
    folder that hands out a piece of s3prl calls it first.
    """
    from s3prl_mi_probe.toolkit import compat

    install_import_hook()
    compat.apply()
    quiet.silence_s3prl_noise()
