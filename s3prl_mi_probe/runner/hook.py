"""Interpreter start: the ``s3prl_mi_probe.pth`` file that the installation puts into site-packages imports this.

It imports nothing heavy. It installs the toolkit's import hook
(:mod:`s3prl_mi_probe.toolkit.activation`: the compatibility layer when torchaudio or s3prl is
imported) and adds the ``-d mi_probe`` plugin's own watches, which call into
:mod:`s3prl_mi_probe.runner.patches` and :mod:`s3prl_mi_probe.runner.command_line`:

* ``s3prl.downstream``, ``s3prl.downstream.runner``: ``-d mi_probe`` is registered and the Runner
  patched; when the running program is s3prl's ``run_downstream.py``, its command line gets the
  defaults it lacks for ``-d mi_probe``, and a new ``-d mi_probe`` run's config is checked before
  s3prl writes into the experiment folder.

Set ``S3PRL_MI_PROBE_DISABLE=1`` to turn the hooks off.
"""

import sys

from s3prl_mi_probe.toolkit import activation


def _after_downstream_package(module):
    from s3prl_mi_probe.runner import patches

    patches.add_downstream_path(module)


def _after_runner(module):
    from s3prl_mi_probe.runner import command_line, patches

    patches.patch_runner(module.Runner)
    command_line.complete_run_downstream_arguments()
    command_line.check_new_experiment()


def activate():
    """The compatibility layer and ``-d mi_probe``'s registration, now; safe to call any number of times,
    before or after s3prl."""
    from s3prl_mi_probe.runner import patches

    activation.activate()
    if "s3prl.downstream" in sys.modules:
        patches.add_downstream_path(sys.modules["s3prl.downstream"])
    if "s3prl.downstream.runner" in sys.modules:
        patches.patch_runner(sys.modules["s3prl.downstream.runner"].Runner)


activation.watch("s3prl.downstream", after=_after_downstream_package)
activation.watch("s3prl.downstream.runner", after=_after_runner)
activation.install_import_hook()
