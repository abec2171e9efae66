"""The rows of the probe stage for some layers: every probe kind with its seeds, control, MDL and hard margin.

Every fit reads its rows from the sources within the memory budget, resident or streamed
(:mod:`s3prl_mi_probe.probe.train`), so memory does not grow with the folder. Per-layer results do
not depend on which layers are trained together.
"""

import numpy as np

from s3prl_mi_probe.analyses.hard_margin import sampled_hard_margins
from s3prl_mi_probe.analyses.merge import merged_rows
from s3prl_mi_probe.corpus.control import UNSEEN
from s3prl_mi_probe.probe.kinds import PROBE_KINDS

EVALUATED_SPLITS = ("dev", "test")
SAME_FIT_FOR_EVERY_SEED = (
    "trained once: full-batch L-BFGS from zero draws no random number, so every seed gives the same probes "
    "(a seed spread of 0)"
)


def _absolute_rows(source):
    return np.arange(source.num_rows) if source.rows is None else source.rows


def probe_rows(sources, settings, controls=None, layers=None, progress=True):
    """Dev and test rows of ``layers`` (default all) for every probe kind of ``settings`` trained on features.

    ``sources``: RowSources of train, dev and test; ``controls``: a control label per row of the
    underlying folder (or arrays), which adds the control columns. Returns ``(rows, notes)``.
    """
    layers = list(sources["train"].layer_ids if layers is None else layers)
    if not layers:
        return [], {}
    layer_columns, notes = _layer_analyses(sources["train"], settings, layers)
    rows = []
    for kind in (probe for probe in settings.probes if probe in PROBE_KINDS):
        seeds = fitted_seeds(sources, kind, settings, layers, progress)
        notes.setdefault("memory_plan", seeds[0].memory_plan_.describe())
        if len(seeds) > 1 and seeds[0].seed_independent_:
            notes[f"seeds_{kind}"] = SAME_FIT_FOR_EVERY_SEED
        params, control_rows = _estimator_params(kind, settings, layers), None
        if controls is not None:
            control_sources = {split: _scored_control(source, controls) for split, source in sources.items()}
            control = _fitted(control_sources, params, progress, seed=settings.seed)
            control_rows = _evaluated(control, control_sources)
        evaluated = {}
        for probes in seeds:  # a fit that stands for every seed is evaluated once
            if id(probes) not in evaluated:
                evaluated[id(probes)] = _evaluated(probes, sources)
        kind_rows = merged_rows([evaluated[id(probes)] for probes in seeds], control_rows)
        if settings.mdl:
            from s3prl_mi_probe.analyses.mdl import online_codelength

            codelengths = online_codelength(
                sources["train"],
                sources["dev"],
                np.unique(sources["train"].labels),
                seed=settings.seed,
                progress=progress,
                **params,
            )
            kind_rows = [{**row, **codelengths[layers.index(row["layer"])]} for row in kind_rows]
        rows += kind_rows
    train_size = {"num_train_segments": sources["train"].num_rows}
    return [{**row, **train_size, **layer_columns[row["layer"]]} for row in rows], notes


def _scored_control(source, controls):
    """``source`` labelled with its control labels, without the rows the control is not scored on."""
    labels = controls[_absolute_rows(source)]
    scored = labels != UNSEEN
    source = source.with_labels(labels)
    return source if scored.all() else source.subset(scored)


def _estimator_params(kind, settings, layers):
    return {
        "kind": kind,
        "mlp_width": settings.mlp_width,
        "device": settings.device,
        "memory_budget": settings.memory_budget,
        "tol_bits": settings.tol_bits,
        "layers": layers,
    }


def fitted_seeds(sources, kind, settings, layers, progress):
    """The probes of ``kind``, one estimator per seed (docs/method.md, "Uncertainty").

    The first seed searches the L2 grid; every further seed trains at the L2 strength the first chose
    per layer, so that a seed varies the training itself (row order, an MLP's initial weights, hence
    the epoch and fit kept), not the L2 search. A fit that draws no random number
    (``seed_independent_``: a linear probe trained full-batch) is the same for every seed, so it stands
    for all of them (the same estimator, repeated).
    """
    params = _estimator_params(kind, settings, layers)
    first = _fitted(sources, params, progress, seed=settings.seed)
    if first.seed_independent_:
        return [first] * settings.seeds
    chosen = [[l2] for l2 in first.l2_]
    return [
        first,
        *(_fitted(sources, params, progress, seed=seed, l2_candidates=chosen) for seed in settings.seed_range()[1:]),
    ]


def _fitted(sources, params, progress, **options):
    """:class:`~s3prl_mi_probe.probe.train.LayerProbes` of ``params`` and ``options`` fitted on train, L2 and
    epochs chosen on dev."""
    from s3prl_mi_probe.probe.train import LayerProbes

    return LayerProbes(**params, **options, progress=progress).fit(sources["train"], dev=sources["dev"])


def _evaluated(probes, sources):
    """The dev and test rows of fitted ``probes``."""
    return [row for split in EVALUATED_SPLITS for row in probes.evaluate(sources[split], split=split)]


def _layer_analyses(train, settings, layers):
    """Per layer, the columns that describe the layer's features whatever the probe: the hard margin."""
    if not settings.hard_margin:
        return {layer: {} for layer in layers}, {}
    margins, used = sampled_hard_margins(
        train.select_layers(layers), settings.hard_margin_rows, settings.seed, settings.device, settings.memory_budget
    )
    columns = {layer: {"hard_margin": margin, "hard_margin_segments": used} for layer, margin in zip(layers, margins)}
    return columns, {"hard_margin_segments": used}


def ordered_rows(rows, probes):
    """Rows by probe kind (in ``probes`` order), split (dev, test) and layer: as one process writes them."""
    return sorted(
        rows, key=lambda row: (probes.index(row["probe"]), EVALUATED_SPLITS.index(row["split"]), row["layer"])
    )
