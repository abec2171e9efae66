"""Makes ``-d mi_probe`` resolvable in an unmodified s3prl and gives that downstream every layer.

* ``s3prl.downstream.mi_probe`` is found through ``s3prl.downstream.__path__``, extended with our
  ``plugin_tree`` folder (its ``mi_probe/expert.py`` re-exports our DownstreamExpert).
* s3prl's Runner builds its Featurizer, running the upstream once, before it imports the expert.
  ``Runner._get_featurizer`` is wrapped so that, for ``-d mi_probe`` only, it builds
  :class:`~s3prl_mi_probe.runner.featurizer.AllLayerFeaturizer` instead of the weighted sum;
  every other downstream gets s3prl's own Featurizer, unchanged. ``_get_downstream`` is wrapped
  to turn a corpus or option error (every problem found in the manifest) into a plain exit message, and to
  let the expert reach the upstream while it is built (:func:`runner_upstream`): the fine-tune
  probe copies the upstream's layers above the probed one.

The import hooks in :mod:`s3prl_mi_probe.runner.hook` call these functions when s3prl is imported;
:func:`s3prl_mi_probe.runner.hook.activate` does the same for an s3prl imported before the hooks were in place.
"""

from pathlib import Path

DOWNSTREAM_NAME = "mi_probe"
PLUGIN_TREE = str(Path(__file__).resolve().parent / "plugin_tree")
_building = {"upstream": None}


def runner_upstream():
    """The upstream model of the Runner whose ``mi_probe`` expert is being built now, else None."""
    return _building["upstream"]


def add_downstream_path(downstream_package):
    """Let ``s3prl.downstream.mi_probe`` import from our plugin tree."""
    if PLUGIN_TREE not in downstream_package.__path__:
        downstream_package.__path__.append(PLUGIN_TREE)


def patch_runner(runner_class):
    """Wrap the Runner so that ``-d mi_probe`` receives every layer and reports bad input plainly."""
    if getattr(runner_class._get_featurizer, "_mi_probe_wrapped", False):
        return
    _wrap_get_featurizer(runner_class)
    _wrap_get_downstream(runner_class)


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
        _building["upstream"] = self.upstream.model
        try:
            return original(self)
        except ValueError as error:
            # Corpus problems (all of them) and refused options: the message is the report; a
            # traceback through s3prl would only hide it.
            raise SystemExit(f"[mi_probe] {error}") from None
        finally:
            _building["upstream"] = None

    runner_class._get_downstream = _get_downstream
