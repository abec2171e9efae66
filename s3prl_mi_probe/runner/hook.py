"""Import hooks that activate the plugin when torchaudio or s3prl is first imported.

Imported at interpreter start by the ``s3prl_mi_probe.pth`` file that the installation puts into
site-packages. It imports nothing heavy: it only puts a finder on ``sys.meta_path`` that waits for
a few module names (:data:`_HOOKS`) and calls into :mod:`s3prl_mi_probe.runner.compat`,
:mod:`s3prl_mi_probe.runner.quiet`, :mod:`s3prl_mi_probe.runner.patches` and
:mod:`s3prl_mi_probe.runner.command_line` when they are imported:

* ``torchaudio``: the torchaudio shims that the installed s3prl needs, right after torchaudio is
  imported. Not only s3prl needs them: a worker process (joblib/loky, multiprocessing spawn) that
  unpickles an s3prl function *by value*, as ``s3prl.util.audio_info.get_audio_info(...,
  num_workers=N)`` ships it, imports the modules that function names (torchaudio), never s3prl.
* ``s3prl``: the remaining shims and the noise filters, before s3prl's own code runs.
* ``s3prl.downstream``, ``s3prl.downstream.runner``: ``-d mi_probe`` is registered and the Runner
  patched; when the running program is s3prl's ``run_downstream.py``, its command line gets the
  defaults it lacks for ``-d mi_probe``, and a new ``-d mi_probe`` run's config is checked before
  s3prl writes into the experiment folder.
* the s3prl modules of :data:`s3prl_mi_probe.runner.quiet.IMPORT_WARNINGS`: their import runs with
  their known deprecation warnings silenced.

Set ``S3PRL_MI_PROBE_DISABLE=1`` to turn the hooks off.
"""

import contextlib
import importlib
import importlib.abc
import os
import sys

from s3prl_mi_probe.runner import quiet  # stdlib only: contextlib, warnings


def _after_torchaudio(module):
    from s3prl_mi_probe.runner import compat

    compat.apply_torchaudio()


def _before_s3prl(module):
    from s3prl_mi_probe.runner import compat

    compat.apply()
    quiet.silence_s3prl_noise()


def _after_downstream_package(module):
    from s3prl_mi_probe.runner import patches

    patches.add_downstream_path(module)


def _after_runner(module):
    from s3prl_mi_probe.runner import command_line, patches

    patches.patch_runner(module.Runner)
    command_line.complete_run_downstream_arguments()
    command_line.check_new_experiment()


# module name -> (called before the module body runs, called after it ran, context its body runs in)
_HOOKS = {
    "torchaudio": (None, _after_torchaudio, None),
    "s3prl": (_before_s3prl, None, None),
    "s3prl.downstream": (None, _after_downstream_package, None),
    "s3prl.downstream.runner": (None, _after_runner, None),
    **dict.fromkeys(quiet.IMPORT_WARNINGS, (None, None, quiet.import_of)),
}


class _HookedLoader(importlib.abc.Loader):
    """Wraps a module's real loader and runs our hooks around its ``exec_module``."""

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
        hooks = _HOOKS.get(fullname)
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


def install():
    """Put the hook first on ``sys.meta_path`` (once), unless disabled by the environment."""
    if os.environ.get("S3PRL_MI_PROBE_DISABLE", "") not in ("", "0"):
        return
    if not any(isinstance(finder, S3prlImportHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, S3prlImportHook())


def activate():
    """Apply compat and registration now; safe to call any number of times, before or after s3prl."""
    from s3prl_mi_probe.runner import compat, patches

    install()
    compat.apply()
    quiet.silence_s3prl_noise()
    if "s3prl.downstream" in sys.modules:
        patches.add_downstream_path(sys.modules["s3prl.downstream"])
    if "s3prl.downstream.runner" in sys.modules:
        patches.patch_runner(sys.modules["s3prl.downstream.runner"].Runner)


install()
