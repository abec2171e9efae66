"""Makes ``-d mi_probe`` resolvable in an unmodified s3prl and gives that downstream every layer.

* ``s3prl.downstream.mi_probe`` is found through ``s3prl.downstream.__path__``, extended with our
  ``plugin_tree`` folder (its ``mi_probe/expert.py`` re-exports our DownstreamExpert).
* s3prl's Runner builds its Featurizer, running the upstream once, before it imports the expert.
  ``Runner._get_featurizer`` is wrapped so that, for ``-d mi_probe`` only, it builds
  :class:`~s3prl_mi_probe.runner.featurizer.AllLayerFeaturizer` instead of the weighted sum;
  every other downstream gets s3prl's own Featurizer, unchanged. ``_get_downstream`` is wrapped
  to turn a corpus or option error (every problem found in the manifest) into a plain exit message, and to
  let the expert reach the Runner while it is built: its upstream (:func:`runner_upstream`; the
  fine-tune probe copies the upstream's layers above the probed one) and the step of the checkpoint
  it loaded (:func:`runner_checkpoint_step`; ``-m evaluate`` rows carry that step).
* ``Runner.train`` is wrapped so that, under DDP, the ranks other than 0 stop after the last
  training step (s3prl 0.4.18 counts steps on rank 0 only).
* ``Runner.__init__`` is wrapped so that ``-d mi_probe`` on a machine without CUDA runs on the CPU
  with a one-line warning when ``--device`` was left at s3prl's default ``cuda`` (s3prl never takes
  the device from a checkpoint, so ``-m evaluate -e CKPT`` would otherwise stop with a traceback).

The import hooks in :mod:`s3prl_mi_probe.runner.hook` call these functions when s3prl is imported;
:func:`s3prl_mi_probe.runner.hook.activate` does the same for an s3prl imported before the hooks were in place.
"""

import sys
from pathlib import Path

DOWNSTREAM_NAME = "mi_probe"
PLUGIN_TREE = str(Path(__file__).resolve().parent / "plugin_tree")
_building = {"runner": None}


def runner_upstream():
    """The upstream model of the Runner whose ``mi_probe`` expert is being built now, else None."""
    runner = _building["runner"]
    return None if runner is None else runner.upstream.model


def runner_checkpoint_step():
    """The step of the checkpoint (``-e``/``-i``) that the Runner building the expert now loaded; 0 without one."""
    runner = _building["runner"]
    return 0 if runner is None else _checkpoint_step(runner)


def _checkpoint_step(runner):
    """The step of the checkpoint a Runner loaded (``init_ckpt``); 0 when it loaded none."""
    return int(runner.init_ckpt.get("Step") or 0)


def add_downstream_path(downstream_package):
    """Let ``s3prl.downstream.mi_probe`` import from our plugin tree."""
    if PLUGIN_TREE not in downstream_package.__path__:
        downstream_package.__path__.append(PLUGIN_TREE)


def patch_runner(runner_class):
    """Wrap the Runner for ``-d mi_probe`` (see the module docstring); other downstreams are untouched."""
    if getattr(runner_class._get_featurizer, "_mi_probe_wrapped", False):
        return
    _wrap_init(runner_class)
    _wrap_get_featurizer(runner_class)
    _wrap_get_downstream(runner_class)
    _wrap_train(runner_class)


def _wrap_init(runner_class):
    original = runner_class.__init__

    def __init__(self, args, config):
        if args.downstream == DOWNSTREAM_NAME:
            _fall_back_to_cpu_without_cuda(args)
        original(self, args, config)

    runner_class.__init__ = __init__


def _fall_back_to_cpu_without_cuda(args):
    """Set ``args.device`` to ``cpu`` (with a one-line warning) when it asks for CUDA and there is none."""
    import torch

    if str(args.device).startswith("cuda") and not torch.cuda.is_available():
        print(
            f"[mi_probe] no CUDA device: running on the CPU instead of --device {args.device} "
            "(add --device cpu to choose it)",
            file=sys.stderr,
            flush=True,
        )
        args.device = "cpu"


def _wrap_get_featurizer(runner_class):
    original = runner_class._get_featurizer

    def _get_featurizer(self):
        if self.args.downstream != DOWNSTREAM_NAME:
            return original(self)
        from s3prl_mi_probe.runner.featurizer import AllLayerFeaturizer

        model = AllLayerFeaturizer(
            upstream=self.upstream.model,
            feature_selection=self.args.upstream_feature_selection,
            layer_selection=self.args.upstream_layer_selection,
            upstream_device=self.args.device,
        ).to(self.args.device)
        # The expert is built from ``**vars(args)``: this is how it learns which layers it probes.
        self.args.mi_probe_layers = model.layer_ids
        return self._init_model(
            model=model, name="Featurizer", trainable=True, interfaces=["output_dim", "downsample_rate"]
        )

    _get_featurizer._mi_probe_wrapped = True
    runner_class._get_featurizer = _get_featurizer


def _wrap_get_downstream(runner_class):
    original = runner_class._get_downstream

    def _get_downstream(self):
        if self.args.downstream != DOWNSTREAM_NAME:
            return original(self)
        _building["runner"] = self
        try:
            return original(self)
        except ValueError as error:
            # Corpus problems (all of them) and refused options: the message is the report; a
            # traceback through s3prl would only hide it.
            raise SystemExit(f"[mi_probe] {error}") from None
        finally:
            _building["runner"] = None

    runner_class._get_downstream = _get_downstream


class _LastStepDone(Exception):
    """Raised on a DDP rank > 0 at the first forward after its last training step."""


def _wrap_train(runner_class):
    original = runner_class.train

    def train(self):
        import torch.distributed as dist

        if self.args.downstream != DOWNSTREAM_NAME or not dist.is_initialized() or dist.get_rank() == 0:
            return original(self)
        # s3prl 0.4.18 advances the step counter on rank 0 only, so the other ranks never leave the
        # training loop and block in DDP's next all-reduce once rank 0 has finished. Count their
        # forwards instead and stop them after the last step (before any collective of the next).
        runner_config = self.config["runner"]
        forwards_left = (runner_config["total_steps"] - _checkpoint_step(self)) * (
            runner_config.get("gradient_accumulate_steps") or 1
        )

        def stop_after_last_step(module, args):
            nonlocal forwards_left
            if forwards_left == 0:
                raise _LastStepDone
            forwards_left -= 1

        hook = self.downstream.model.register_forward_pre_hook(stop_after_last_step)
        try:
            return original(self)
        except _LastStepDone:
            return None
        finally:
            hook.remove()

    runner_class.train = train
