"""The probe estimator: one probe per layer, L2 and early stopping chosen per layer on dev (docs/method.md).

:class:`LayerProbes` follows scikit-learn's conventions: parameters are set in ``__init__``, ``fit``
returns the estimator, what it learned ends in ``_``, and :meth:`LayerProbes.evaluate` gives one
metric row per layer (Barber–Agakov bound, accuracy, margins, bootstrap intervals). Data comes from a
*source* (:mod:`s3prl_mi_probe.probe.source`): in-memory arrays or a features folder, read resident
or streamed within ``memory_budget`` (:mod:`s3prl_mi_probe.probe.memory`), so memory stays flat
whatever the number of rows. The bank training itself (Adam with per-probe early stopping on dev,
the convex polish) is in :mod:`s3prl_mi_probe.probe.bank_training`; linear probes of a train split
of at most ``full_batch_rows`` rows train by full-batch L-BFGS instead, with the same early stopping
(:mod:`s3prl_mi_probe.probe.bank_lbfgs`). Per layer the candidate with the lowest dev cross-entropy
wins, over L2 strengths and fits ("early_stop", and for linear probes "converged").

L2 search at scale: with more than ``l2_search_rows`` train rows, the whole grid is first searched on
a seeded, class-stratified subsample of that many rows (and of dev); the full data then trains, per
layer, only the strength chosen there and the next smaller one (more data needs less regularisation),
so an epoch costs a third of the 6-value grid's (:func:`shrinking_candidates`). ``l2_candidates`` gives
those per-layer strengths directly, e.g. from a fit on fewer rows of the same data (online codelength).

L2 convention: a probe minimises ``mean_i CE_i (nats) + l2 / 2 * sum ||W||_F^2`` over its weight
matrices (biases not penalised). For the linear probe this is scikit-learn's ``LogisticRegression``
objective divided by ``C * N``: ``C = 1 / (l2 * N)``.
"""

import contextlib
import inspect
import math
import warnings
from collections import defaultdict

import numpy as np
import torch

from s3prl_mi_probe.common.threads import threads_for_work
from s3prl_mi_probe.features.folder import FeaturesFolder
from s3prl_mi_probe.metrics.bounds import cross_entropy_bits
from s3prl_mi_probe.metrics.columns import METRIC_NAMES
from s3prl_mi_probe.metrics.records import metric_rows, record_batch
from s3prl_mi_probe.probe.arrays import carve_dev, encode_labels
from s3prl_mi_probe.probe.bank_lbfgs import FULL_BATCH_ROWS, LBFGS_COPIES, lbfgs_bank
from s3prl_mi_probe.probe.bank_training import (
    POLISH_MAX_STEPS,
    TrainOptions,
    flushed_denormals,
    polish_best,
    train_bank,
)
from s3prl_mi_probe.probe.kinds import DEFAULT_MLP_WIDTH, build_probe_bank, probe_kind
from s3prl_mi_probe.probe.memory import DEFAULT_MEMORY_BUDGET, STATE_COPIES, bank_state_bytes, plan_memory
from s3prl_mi_probe.probe.rows import StreamedRows, load_rows
from s3prl_mi_probe.probe.source import RowSource, as_source
from s3prl_mi_probe.probe.standardize import RunningStandardizer
from s3prl_mi_probe.probe.stopping import DEFAULT_PATIENCE, DEFAULT_TOL_BITS
from s3prl_mi_probe.probe.subsample import stratified_subsample

DEFAULT_L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
L2_SEARCH_ROWS = 200_000
FITS = ("early_stop", "converged")
UNSEEN_EXAMPLES = 5


class LayerProbes:
    """One probe per layer of ``kind`` (a key of ``PROBE_KINDS``), L2 from ``l2_grid`` and the epoch chosen on dev.

    Parameters: ``max_epochs``, ``batch_size``, ``patience``, ``lr`` and ``tol_bits`` (the dev gain in
    bits that counts as progress) drive Adam (see :mod:`~s3prl_mi_probe.probe.bank_training`);
    ``mlp_width`` is the width of MLP probes; ``seed`` fixes the dev carve, the row order and MLP weights;
    ``memory_budget`` (bytes) bounds what training holds above the process's baseline; ``classes`` fixes
    the label set (default: the train labels);
    ``layers`` picks layers of the source by index (default: all; results do not depend on which
    layers are trained together); ``l2_search_rows`` see the module docstring (None: never);
    ``l2_candidates``: per layer, the L2 strengths to train (lists of one length), instead of ``l2_grid``
    and its search;
    ``polish_steps`` caps the convex polish; ``full_batch_rows``: linear probes of at most this many train
    rows train by full-batch L-BFGS (0: never); ``warm_start`` (scikit-learn's meaning): a fit after the
    first starts every candidate of a layer from the probe the previous fit kept for it, instead of from
    scratch (same kind, classes, layers and width; e.g. a larger prefix of the same rows).

    Learned attributes: ``classes_``, ``layers_``, ``probe_`` (the bank, one probe per layer),
    ``standardizer_``, ``l2_``, ``fit_kind_`` (per layer, the fit kept: ``early_stop`` or ``converged``),
    ``best_epoch_``, ``epochs_run_`` and ``train_passes_`` (per layer, passes over train at the best dev
    round, when training stopped, and in all with the polish), ``l2_candidates_`` (per layer, the strengths
    trained on all rows), ``num_train_segments_``, ``memory_plan_``, ``seed_independent_`` (True when the fit
    used no random number, so that every ``seed`` gives the same probes: a linear probe trained full-batch
    on a given dev, without an L2 search subsample).
    """

    def __init__(
        self,
        kind="linear",
        l2_grid=None,
        max_epochs=100,
        batch_size=256,
        patience=DEFAULT_PATIENCE,
        lr=1e-2,
        mlp_width=DEFAULT_MLP_WIDTH,
        seed=0,
        device="cpu",
        memory_budget=DEFAULT_MEMORY_BUDGET,
        classes=None,
        layers=None,
        l2_search_rows=L2_SEARCH_ROWS,
        l2_candidates=None,
        polish_steps=POLISH_MAX_STEPS,
        tol_bits=DEFAULT_TOL_BITS,
        full_batch_rows=FULL_BATCH_ROWS,
        warm_start=False,
        progress=True,
    ):
        self.kind = kind
        self.l2_grid = l2_grid
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.lr = lr
        self.mlp_width = mlp_width
        self.seed = seed
        self.device = device
        self.memory_budget = memory_budget
        self.classes = classes
        self.layers = layers
        self.l2_search_rows = l2_search_rows
        self.l2_candidates = l2_candidates
        self.polish_steps = polish_steps
        self.tol_bits = tol_bits
        self.full_batch_rows = full_batch_rows
        self.warm_start = warm_start
        self.progress = progress

    def get_params(self, deep=True):
        """The constructor's parameters (scikit-learn's contract: nothing is nested, so ``deep`` changes nothing)."""
        return {name: getattr(self, name) for name in inspect.signature(LayerProbes).parameters}

    def set_params(self, **params):
        """Set constructor parameters by name, as scikit-learn's ``clone`` and grid searches do; returns ``self``.

        ValueError naming any name that is not a parameter; values are checked by ``fit``.
        """
        known = self.get_params()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"LayerProbes has no parameter {', '.join(unknown)} (its parameters: {', '.join(known)})")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def fit(self, train, dev=None, groups=None):
        """Fit on ``train``: a ``(X, y)`` pair, a RowSource or a features folder (its train split).

        ``dev`` likewise (a folder's dev split by default); without one, about 10% of train is carved
        off, seeded: whole ``groups`` (one id per train row, or the source's own) when there are any,
        else random rows. Dev rows of classes unseen in train are dropped. Returns ``self``.
        """
        kind = probe_kind(self.kind)
        train, dev, classes, targets, dev_targets, carved = self._train_and_dev(train, dev, groups)
        layers = list(train.layer_ids if self.layers is None else self.layers)
        previous = self._previous_fit(classes, layers, train.dim)
        candidates, pilot = self._l2_candidates(train, dev, classes, len(layers))
        bank, l2 = self._initial_bank(train, layers, candidates, len(classes), previous or pilot)
        train, dev = train.select_layers(layers), dev.select_layers(layers)
        full_batch = kind.convex and train.num_rows <= self.full_batch_rows
        state = bank_state_bytes(
            sum(value.numel() for value in bank.parameters()), LBFGS_COPIES if full_batch else STATE_COPIES
        )
        plan = plan_memory(
            train.num_rows,
            dev.num_rows,
            len(layers),
            train.dim,
            len(classes),
            state,
            self.memory_budget,
            self.device,
            self.batch_size,
        )
        standardizer = RunningStandardizer(len(layers), train.dim).to(plan.device)
        train_rows = load_rows(train, targets, plan, plan.train_resident, standardizer, True, self.progress)
        dev_rows = load_rows(dev, dev_targets, plan, plan.dev_resident, standardizer)
        kind_kernel = kind.kernel(bank, l2.shape[1])
        start = kind_kernel.from_bank({name: value.detach() for name, value in bank.named_parameters()})
        options = TrainOptions(
            self.max_epochs, self.batch_size, self.patience, self.lr, self.tol_bits, chunk_rows=plan.chunk_rows
        )
        # A full-batch pass over few rows is too small to repay waking a second thread at every kernel.
        pass_work = train.num_rows * len(layers) * train.dim * l2.shape[1] * len(classes)
        sized = threads_for_work(pass_work) if full_batch and plan.device == "cpu" else contextlib.nullcontext()
        with sized:
            best, fits, fits_dev_ce, passes = self._train(
                kind, kind_kernel, start, train_rows, dev_rows, l2, options, full_batch
            )
        num_candidates = l2.shape[1]
        dev_ce = torch.stack(fits_dev_ce)
        chosen = dev_ce.transpose(0, 1).reshape(len(layers), -1).argmin(1).cpu()
        fit, chosen = chosen // num_candidates, chosen % num_candidates
        per_layer = torch.arange(len(layers))
        bank_fits = [kind_kernel.to_bank(params) for params in fits]
        stacked = {name: torch.stack([params[name] for params in bank_fits]) for name in bank_fits[0]}
        picks = per_layer * num_candidates + chosen
        fitted = build_probe_bank(self.kind, len(layers), train.dim, len(classes), self.mlp_width, self.seed)
        fitted.load_state_dict(
            {name: value[fit.to(value.device), picks.to(value.device)] for name, value in stacked.items()}
        )
        self.classes_, self.layers_ = classes, layers
        self.probe_, self.standardizer_ = fitted.to(plan.device), standardizer
        self.l2_ = [candidates[layer][k] for layer, k in enumerate(chosen.tolist())]
        self.best_epoch_ = _per_layer(best["best_epoch"], chosen)
        self.epochs_run_ = _per_layer(best["epochs_run"], chosen)
        self.train_passes_ = _per_layer(passes, chosen)
        self.fit_kind_ = [FITS[k] for k in fit.tolist()]
        self.l2_candidates_, self.num_train_segments_, self.memory_plan_ = candidates, train.num_rows, plan
        # Full-batch L-BFGS from zero draws no random number; a dev carve or an L2 search subsample would.
        self.seed_independent_ = full_batch and not carved and pilot is None and previous is None
        return self

    def _previous_fit(self, classes, layers, dim):
        """``self`` when this fit warm-starts from the previous one (``warm_start`` and fitted), else None.

        ValueError when the previous fit's probes cannot start this one (another kind, classes, layers or width).
        """
        if not self.warm_start or not hasattr(self, "probe_"):
            return None
        wanted = build_probe_bank(self.kind, len(layers), dim, len(classes), self.mlp_width)
        shapes = {name: value.shape for name, value in wanted.state_dict().items()}
        same = (
            type(self.probe_) is type(wanted)
            and {name: value.shape for name, value in self.probe_.state_dict().items()} == shapes
            and np.array_equal(self.classes_, classes)
            and self.layers_ == layers
        )
        if not same:
            raise ValueError(
                "warm_start needs the previous fit's kind, classes, layers and feature width; "
                "refit with warm_start=False"
            )
        return self

    def _train_and_dev(self, train, dev, groups):
        """``(train, dev, classes, train targets, dev targets, carved)`` as :meth:`fit` describes its arguments;
        ``carved``: dev was carved off train."""
        if dev is None and isinstance(train, FeaturesFolder) and train.has_split("dev"):
            dev = RowSource.from_folder(train, "dev")
        train = as_source(train, name="train")
        carved = dev is None
        if carved:
            carved_rows = carve_dev(train.num_rows, train.groups if groups is None else groups, self.seed)
            train, dev = train.subset(~carved_rows), train.subset(carved_rows)
        else:
            dev = as_source(dev, name="dev", split="dev")
        classes = np.unique(train.labels) if self.classes is None else np.unique(np.asarray(self.classes))
        targets, known = encode_labels(train.labels, classes)
        if not known.all():
            raise ValueError("train labels outside the given classes")
        dev_targets, dev_known = encode_labels(dev.labels, classes)
        dev = dev.subset(dev_known)
        if (dev.num_layers, dev.dim) != (train.num_layers, train.dim):
            raise ValueError(
                f"dev features are {dev.num_layers} layers {dev.dim} wide, train features "
                f"{train.num_layers} layers {train.dim} wide"
            )
        return train, dev, classes, targets, dev_targets, carved

    def _train(self, kind, kind_kernel, start, train_rows, dev_rows, l2, options, full_batch):
        """Train the bank from ``start``: full-batch L-BFGS, or minibatch Adam then (convex kinds) the polish.

        Returns ``(best, fits, fits_dev_ce, passes)``: the trainer's record, the candidate fits (early-stopped,
        then converged) with their dev CE (inf where a fit is not of that kind), and passes over train.
        """
        if full_batch:
            best = lbfgs_bank(kind_kernel, start, kind.penalized, train_rows, dev_rows, l2, options, self.progress)
            # One iterate per probe; it is the "converged" fit where it is the optimum.
            at_optimum = best["converged"]
            fits_dev_ce = [
                best["dev_ce"].masked_fill(at_optimum, math.inf),
                best["dev_ce"].masked_fill(~at_optimum, math.inf),
            ]
            return best, [best["params"], best["params"]], fits_dev_ce, best["epochs_run"] + 1  # + the first pass
        generator = torch.Generator().manual_seed(self.seed)
        best = train_bank(
            kind_kernel, start, kind.penalized, train_rows, dev_rows, l2, generator, options, self.progress
        )
        fits, fits_dev_ce, passes = [best["params"]], [best["dev_ce"]], best["epochs_run"]
        if kind.convex:
            with flushed_denormals():
                converged = polish_best(
                    kind_kernel,
                    kind.penalized,
                    best,
                    train_rows,
                    dev_rows,
                    l2,
                    self.tol_bits,
                    self.polish_steps,
                    options.chunk_rows,
                )
            fits.append(converged["params"])
            fits_dev_ce.append(converged["dev_ce"])
            passes = passes + converged["passes"]
        return best, fits, fits_dev_ce, passes

    def _l2_candidates(self, train, dev, classes, num_layers):
        """``(candidates, pilot)``: per layer, the L2 strengths trained on all rows (the grid, or two of it
        after a subsample search), and the probes fitted in that search (None without one)."""
        if self.l2_candidates is not None:
            if len(self.l2_candidates) != num_layers or len({len(layer) for layer in self.l2_candidates}) != 1:
                raise ValueError(f"l2_candidates needs {num_layers} lists of one length, got {self.l2_candidates}")
            return [[float(l2) for l2 in layer] for layer in self.l2_candidates], None
        grid = [float(l2) for l2 in (DEFAULT_L2_GRID if self.l2_grid is None else self.l2_grid)]
        if not self.l2_search_rows or train.num_rows <= self.l2_search_rows or len(grid) <= 2:
            return [grid] * num_layers, None
        pilot_train = train.subset(stratified_subsample(train.labels, self.l2_search_rows, seed=self.seed))
        pilot_dev = dev.subset(stratified_subsample(dev.labels, self.l2_search_rows, seed=self.seed))
        pilot = LayerProbes(**{**self.get_params(), "l2_search_rows": None, "classes": classes})
        pilot.fit(pilot_train, dev=pilot_dev)
        return shrinking_candidates(grid, pilot.l2_), pilot

    def _initial_bank(self, train, layers, candidates, num_classes, pilot=None):
        """The bank of (layer, L2) probes of ``layers`` on ``device`` and its L2 strengths ``[L, K]``.

        The bank is drawn for every layer of the source and then cut to ``layers``, so a probe starts
        the same whichever layers it is trained with. After a subsample search every candidate of a
        layer starts from the probe ``pilot`` chose for it (a warm start); so it does after a previous fit
        when ``warm_start`` is set (``pilot`` is then that fit).
        """
        num_candidates = len(candidates[0])
        bank = build_probe_bank(
            self.kind, len(layers) * num_candidates, train.dim, num_classes, self.mlp_width, self.seed
        )
        if pilot is None:
            full = build_probe_bank(
                self.kind, train.num_layers * num_candidates, train.dim, num_classes, self.mlp_width, self.seed
            )
            members = torch.tensor(
                [train.layer_ids.index(layer) * num_candidates + k for layer in layers for k in range(num_candidates)]
            )
            bank.load_state_dict({name: value[members] for name, value in full.state_dict().items()})
        else:
            warm = pilot.probe_.state_dict()
            bank.load_state_dict(
                {name: value.cpu().repeat_interleave(num_candidates, 0) for name, value in warm.items()}
            )
        l2 = torch.tensor(candidates, device=self.device)
        return bank.to(self.device), l2

    def evaluate(self, data, labels=None, split="test"):
        """One metric row per fitted layer on ``data`` (as in :meth:`fit`; a folder's ``split`` rows).

        Row keys: ``layer_metrics`` plus layer, split, probe, l2, epochs, fit and ``dropped_unseen``:
        rows whose label was not among the training classes cannot be scored; they are dropped, counted
        there, and a warning says so.
        """
        source, targets, dropped = self._scored_rows(data, labels, split)
        extra = {"split": split, "probe": self.kind, "dropped_unseen": dropped}
        fitted = [
            {"l2": l2, "fit": fit, "best_epoch": best, "epochs_run": run, "train_passes": passes}
            for l2, fit, best, run, passes in zip(
                self.l2_, self.fit_kind_, self.best_epoch_, self.epochs_run_, self.train_passes_
            )
        ]
        if source.num_rows == 0:
            warnings.warn(f"{split}: no rows left to evaluate; its metrics are NaN", stacklevel=2)
            empty = {**dict.fromkeys(METRIC_NAMES, float("nan")), "num_segments": 0, "num_classes": len(self.classes_)}
            return [{"layer": layer, **extra, **empty, **chosen} for layer, chosen in zip(self.layers_, fitted)]
        records = defaultdict(list)
        with torch.no_grad():
            for features, batch_targets in self._chunks(source, targets):
                logits = self.probe_(features)
                record_batch(records, logits, batch_targets, self.probe_.margins(features, batch_targets))
        heads = [{"layer": layer, **extra} for layer in self.layers_]
        return metric_rows(records, len(self.classes_), heads, fitted)

    def summed_cross_entropy_bits(self, data, labels=None, split="test"):
        """Per fitted layer, the cross-entropy (bits) summed over the rows of ``data`` (float64 ``[L]``)."""
        source, targets, _ = self._scored_rows(data, labels, split)
        total = torch.zeros(len(self.layers_), dtype=torch.float64)
        with torch.no_grad():
            for features, batch_targets in self._chunks(source, targets):
                total += cross_entropy_bits(self.probe_(features), batch_targets).double().sum(1).cpu()
        return total.numpy()

    def _scored_rows(self, data, labels, split):
        """``(source, targets, dropped)``: the fitted layers of ``data``'s rows whose labels are known classes."""
        source = as_source(data, labels, name=split, split=split)
        if source.layer_ids != self.layers_:
            source = source.select_layers(self.layers_)
        targets, known = encode_labels(source.labels, self.classes_)
        dropped = int((~known).sum())
        if dropped:
            unseen = np.unique(source.labels[~known])
            shown = ", ".join(map(str, unseen[:UNSEEN_EXAMPLES])) + (" ..." if unseen.size > UNSEEN_EXAMPLES else "")
            warnings.warn(
                f"{split}: {dropped} of {source.num_rows} rows have labels never seen in train ({shown}); a probe "
                "cannot score them, so they are dropped (counted in 'dropped_unseen')",
                stacklevel=3,
            )
            source = source.subset(known)
        if source.dim != self.probe_input_dim:
            raise ValueError(
                f"{split} features are {source.dim} wide, the probes were fitted on {self.probe_input_dim}"
            )
        return source, targets, dropped

    def _chunks(self, source, targets):
        """Standardised ``(features, targets)`` chunks of ``source`` on the fitted device, in bounded memory."""
        plan = self.memory_plan_
        affine = self.standardizer_.affine(plan.device)
        return StreamedRows(source, targets, affine, plan.read_rows, plan.device, plan.pinned).chunks(plan.chunk_rows)

    @property
    def probe_input_dim(self):
        """The (padded) feature width the fitted probes take."""
        return self.standardizer_.total.shape[1]


def shrinking_candidates(grid, chosen):
    """Per layer, the strength of ``grid`` ``chosen`` on fewer rows and the next smaller one (the two
    smallest when it is the smallest): more data needs less regularisation."""
    ascending = sorted(float(l2) for l2 in grid)
    candidates = []
    for l2 in chosen:
        position = max(ascending.index(l2), 1)
        candidates.append(ascending[position - 1 : position + 1])
    return candidates


def _per_layer(values, chosen):
    """``values [L, K]`` at each layer's chosen candidate, as floats."""
    return [values[layer, k].item() for layer, k in enumerate(chosen.tolist())]


def fit_layer_probes(train, dev=None, probe="linear", groups=None, **params):
    """:class:`LayerProbes` of kind ``probe`` fitted on ``train`` (``(X, y)``, ``X`` ``[L, N, D]`` or a list of L
    ``[N, D_l]``); ``params`` are LayerProbes' other parameters (``seed``, ``device``, ``l2_grid``, ...).

    The one-call form of ``LayerProbes(kind=probe, **params).fit(train, dev=dev, groups=groups)``.
    """
    return LayerProbes(kind=probe, **params).fit(train, dev=dev, groups=groups)


def probe_layers(train, test, dev=None, groups=None, **options):
    """Test-split metric rows, one per layer: probes fitted by :func:`fit_layer_probes` (``options`` are its
    keywords: ``probe``, ``seed``, ``device``, ``l2_grid``, ...), evaluated on ``test``.

    Test rows whose label never occurs in train are dropped with a warning (see :meth:`LayerProbes.evaluate`).
    """
    return fit_layer_probes(train, dev=dev, groups=groups, **options).evaluate(test, split="test")
