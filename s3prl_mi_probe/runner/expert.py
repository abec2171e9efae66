"""The s3prl downstream ``mi_probe``: one probe per upstream layer, trained in one run.

The probe (config ``probe``) is ``linear``, ``mlp1``/``mlp2`` (width ``mlp_width``) on standardised
pooled segments, or ``finetune``: copies of the upstream's layers above each probed layer plus a
linear head. With ``control`` set, a second probe of the same kind learns a control task and the
rows gain control accuracy, control bound and selectivity.

Wiring only: the corpus comes from :mod:`s3prl_mi_probe.corpus`, segment pooling from
:mod:`s3prl_mi_probe.features`, the probe and its metrics from :mod:`s3prl_mi_probe.probe`,
:mod:`s3prl_mi_probe.finetune` and :mod:`s3prl_mi_probe.metrics`. Dev and test metrics go to TensorBoard
(s3prl's tag style: ``mi_probe/<split>-<metric>-layer_<k>``) and to ``EXPDIR/metrics.jsonl``; ``best-states-dev.ckpt``
is kept by mean dev CE over the layers; ``EXPDIR/summary.json`` holds per layer the test metrics at
that layer's best dev step. ``-m evaluate`` writes ``EXPDIR/evaluate-<split>.json``, its rows at the
step of the evaluated checkpoint. Under s3prl's DDP see :mod:`s3prl_mi_probe.runner.distributed`.
"""

import json
import math
from dataclasses import fields
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from s3prl_mi_probe.analyses.selectivity import with_control_columns
from s3prl_mi_probe.common.atomic import append_jsonl, write_json_atomic
from s3prl_mi_probe.common.process_group import current_process_group
from s3prl_mi_probe.common.provenance import file_sha256, input_provenance
from s3prl_mi_probe.common.table import format_table
from s3prl_mi_probe.corpus.control import UNSEEN, control_labels, per_utterance, unscored_segments
from s3prl_mi_probe.corpus.task import TaskOptions, build_task
from s3prl_mi_probe.features.pooling import batch_pooling_matrices, pool_batch
from s3prl_mi_probe.metrics.bounds import LN2, cross_entropy_bits
from s3prl_mi_probe.metrics.columns import CONTROL_COLUMNS, METRIC_NAMES, present_columns
from s3prl_mi_probe.metrics.layer_metrics import layer_metrics
from s3prl_mi_probe.probe.kinds import DEFAULT_MLP_WIDTH, FINETUNE, build_probe_bank, probe_kind
from s3prl_mi_probe.probe.standardize import RunningStandardizer
from s3prl_mi_probe.report.notes import negative_bound_note
from s3prl_mi_probe.report.tensorboard import scalar_tag
from s3prl_mi_probe.runner import distributed
from s3prl_mi_probe.runner.dataset import resolve_num_workers, segment_dataloader
from s3prl_mi_probe.runner.experiment_summary import read_metrics_log, write_summary
from s3prl_mi_probe.runner.patches import runner_checkpoint_step, runner_upstream

# What an evaluation batch records per probe (prefix "" or "control_"), per segment.
_EVALUATION_RECORDS = ("ce_bits", "correct", "margins", "labels")
LOADER_KEYS = {"manifest": None, "train_batch_size": 8, "eval_batch_size": 8, "num_workers": "auto"}
PROBE_KEYS = {"probe": "linear", "mlp_width": DEFAULT_MLP_WIDTH, "control": None, "finetune_layers": None}


def task_options_from_config(config):
    """TaskOptions from the ``downstream_expert`` config; unknown keys are an error naming them."""
    option_names = {field.name for field in fields(TaskOptions)}
    unknown = sorted(set(config) - option_names - set(LOADER_KEYS) - set(PROBE_KEYS))
    if unknown:
        known = sorted(option_names | set(LOADER_KEYS) | set(PROBE_KEYS))
        raise ValueError(f"unknown downstream_expert config keys {unknown}; known: {known}")
    if not config.get("manifest"):
        raise ValueError("downstream_expert.manifest is required (a TSV: id, audio, alignment, split)")
    options = {name: value for name, value in config.items() if name in option_names}
    if "silence_labels" in options:
        options["silence_labels"] = tuple(options["silence_labels"])
    return TaskOptions(**options)


# A task built by check_expert_config before s3prl wrote anything, for the expert of the same config.
_checked_tasks = {}


def _config_key(downstream_expert):
    return json.dumps(downstream_expert, sort_keys=True, default=str)


def check_expert_config(downstream_expert):
    """Check a ``downstream_expert`` config as the expert will read it, before any upstream work.

    The keys, the task options, ``num_workers``, the probe kind, the manifest with every file it names
    (all problems at once) and the control key. Returns the config with its defaults, the TaskOptions, the
    task and the control labels (None without ``control``); ValueError (a ProblemsFound for the corpus)
    saying what is wrong.
    """
    config = {**LOADER_KEYS, **PROBE_KEYS, **downstream_expert}
    options = task_options_from_config(downstream_expert)
    resolve_num_workers(config["num_workers"])  # refuses a bad value before the corpus is read
    if config["probe"] != FINETUNE:
        probe_kind(config["probe"])
    task = _checked_tasks.pop(_config_key(downstream_expert), None) or build_task(Path(config["manifest"]), options)
    controls = None if config["control"] is None else control_labels(task, config["control"], options.seed)
    return config, options, task, controls


def check_before_run(downstream_expert):
    """:func:`check_expert_config`, keeping the task for the expert of this config that s3prl builds later in
    this process (it takes it instead of reading the corpus again)."""
    _, _, task, _ = check_expert_config(downstream_expert)
    _checked_tasks[_config_key(downstream_expert)] = task


class DownstreamExpert(nn.Module):
    """s3prl's DownstreamExpert interface: ``get_dataloader``, ``forward``, ``log_records``."""

    def __init__(self, upstream_dim, upstream_rate, downstream_expert, expdir, **kwargs):
        super().__init__()
        self.passed_layers = kwargs.get("mi_probe_layers")
        self.layer_ids = self.passed_layers
        if not self.layer_ids:
            raise RuntimeError(
                "mi_probe needs every hidden state: run it through s3prl's runner with s3prl-mi-probe "
                "installed (its import hook), or call s3prl_mi_probe.runner.activate() before the Runner"
            )
        self.config, self.options, self.task, controls = check_expert_config(downstream_expert)
        self.group = current_process_group()
        self.num_workers = resolve_num_workers(self.config["num_workers"], processes=self.group.world_size)
        self.manifest = Path(self.config["manifest"])
        # Per split, per utterance: control labels; segments whose key value never occurs in train are
        # UNSEEN and not scored.
        self.control_unscored = None if controls is None else unscored_segments(controls)
        self.controls = None if controls is None else per_utterance(self.task, controls)
        self.upstream_rate = upstream_rate
        self.expdir = Path(expdir)
        self.run_args = kwargs
        self.evaluate_mode = kwargs.get("mode") == "evaluate"
        self.checkpoint_step = runner_checkpoint_step()
        self.finetune = self.config["probe"] == FINETUNE
        self.padding = None
        if self.finetune:
            self.layer_ids = self._finetune_layers()
        else:
            self.standardizer = RunningStandardizer(len(self.layer_ids), upstream_dim)
        self.probe = self._build_probe(upstream_dim)
        self.control_probe = None if self.controls is None else self._build_probe(upstream_dim)
        self.register_buffer("best_dev_ce_bits", torch.tensor(math.inf))
        self.metrics_path = self.expdir / "metrics.jsonl"
        self.summary_path = self.expdir / "summary.json"
        distributed.keep_buffers_out_of_ddp(self)
        if not self.group.leader:
            return  # under DDP, rank 0 writes the experiment's files and reports (as s3prl logs on rank 0)
        if kwargs.get("mode") == "train" and not kwargs.get("init_ckpt"):
            # A new experiment in this folder: earlier results must not mix into its summary.
            self.metrics_path.unlink(missing_ok=True)
            self.summary_path.unlink(missing_ok=True)
        self._print_task()

    def _finetune_layers(self):
        """The layers fine-tuned from: ``finetune_layers`` (default all), each among the hidden states passed."""
        chosen = self.config["finetune_layers"]
        chosen = list(self.layer_ids) if chosen is None else [int(layer) for layer in chosen]
        missing = [layer for layer in chosen if layer not in self.layer_ids]
        if missing:
            raise ValueError(
                f"finetune_layers {missing} are not among the hidden states passed to mi_probe {self.layer_ids}; "
                f"drop -l to pass every layer"
            )
        return chosen

    def _build_probe(self, upstream_dim):
        """One probe per layer: a probe bank on pooled segments, or fine-tuned upper layers + linear heads."""
        num_classes = len(self.task.classes)
        if not self.finetune:
            return build_probe_bank(
                self.config["probe"],
                len(self.layer_ids),
                upstream_dim,
                num_classes,
                mlp_width=self.config["mlp_width"],
                seed=self.options.seed,
            )
        from s3prl_mi_probe.finetune.probes import FinetuneProbes
        from s3prl_mi_probe.finetune.upper_layers import PaddingRecorder

        upstream = runner_upstream()
        if upstream is None:
            raise RuntimeError("the finetune probe copies the upstream's layers: build mi_probe through s3prl's Runner")
        if self.padding is None:
            # The copied blocks must mask exactly the frames the upstream's own blocks masked.
            self.padding = PaddingRecorder(upstream)
        return FinetuneProbes(upstream, self.layer_ids, num_classes)

    def _print_task(self):
        counts = {split: len(items) for split, items in self.task.splits.items()}
        segments = {split: sum(len(item.labels) for item in items) for split, items in self.task.splits.items()}
        tqdm.write(
            f"[mi_probe] task={self.options.task} classes={len(self.task.classes)} layers={self.layer_ids} "
            f"utterances={counts} segments={segments} dropped={ {s: dict(c) for s, c in self.task.dropped.items()} }"
            + (" (dev carved from train)" if self.task.dev_carved else "")
            + f" loader_workers={self.num_workers}"
            + (f" control_unscored_segments={self.control_unscored}" if self.control_unscored else "")
        )

    def get_dataloader(self, split, epoch=0):
        """Utterance batches of a split; training batches are reshuffled each epoch (seeded).

        Under DDP: training batches come from this rank's share (``DistributedSampler``); under
        ``-m evaluate`` each rank reads its contiguous share of the split (see ``runner/distributed.py``).
        """
        if split not in self.task.splits:
            raise ValueError(f"mi_probe has splits {sorted(self.task.splits)}, not {split!r}")
        training = split == "train"
        items = self.task.splits[split]
        if training:
            sampler = distributed.training_sampler(self.group, len(items), self.options.seed, epoch)
        elif self._evaluation_sharded():
            sampler = self.group.share(range(len(items)))
        else:
            sampler = None
        return segment_dataloader(
            items,
            controls=None if self.controls is None else self.controls[split],
            batch_size=self.config["train_batch_size" if training else "eval_batch_size"],
            shuffle=training,
            seed=self.options.seed + epoch,
            num_workers=self.num_workers,
            sampler=sampler,
        )

    def _evaluation_sharded(self):
        """Whether every rank evaluates a share of the split: ``-m evaluate`` under DDP.

        During DDP training s3prl evaluates on rank 0 alone, which then reads the whole split.
        """
        return self.evaluate_mode and self.group.world_size > 1

    def _batch_segments(self, features, segments):
        """Per utterance of a batch, its segment pooling matrix; all labels ``[S]``; control labels or None."""
        spans = [(starts, ends) for starts, ends, *_ in segments]
        matrices = batch_pooling_matrices(
            spans, features.lengths.tolist(), self.upstream_rate, self.options.kind.pooling
        )
        labels = [torch.as_tensor(segment_labels, dtype=torch.long) for _, _, segment_labels, *_ in segments]
        controls = [torch.as_tensor(values, dtype=torch.long) for _, _, _, *control in segments for values in control]
        device = features.hidden.device
        return matrices, torch.cat(labels).to(device), torch.cat(controls).to(device) if controls else None

    def _standardized(self, features, matrices, split):
        """Standardised pooled segments ``[L, S, D]``; training batches update the statistics first."""
        pooled = pool_batch(features.hidden, matrices)
        if split == "train" and self.training:
            if self.group.world_size > 1:
                distributed.update_across_ranks(self.standardizer, pooled)
            else:
                self.standardizer.update(pooled)
        return self.standardizer(pooled)

    def forward(self, split, features, segments, records, **kwargs):
        """Sum over layers (and the control probe) of the mean CE (nats); records what log_records reports."""
        matrices, labels, controls = self._batch_segments(features, segments)
        shared = None if self.finetune else self._standardized(features, matrices, split)
        loss = self._probe_step(self.probe, "", shared, features, matrices, labels, split, records)
        if self.control_probe is not None:
            loss = loss + self._probe_step(
                self.control_probe, "control_", shared, features, matrices, controls, split, records
            )
        return loss

    def _probe_step(self, probe, prefix, inputs, features, matrices, labels, split, records):
        """One probe's summed mean CE (nats) on a batch; its per-segment results go to ``records``."""
        if inputs is None:
            hidden = {layer: features.hidden[index] for index, layer in enumerate(self.passed_layers)}
            inputs = probe.pooled(hidden, self.padding.lengths(features.hidden[0]), matrices)
        logits = probe(inputs)
        scored = labels != UNSEEN  # control segments whose key value never occurs in train are not scored
        if not scored.all():
            inputs, logits, labels = inputs[:, scored], logits[:, scored], labels[scored]
        ce_bits = cross_entropy_bits(logits, labels)  # [L, S]
        if split == "train":
            records[f"{prefix}ce_bits"].append(ce_bits.detach().mean(dim=1).cpu())
        else:
            with torch.no_grad():
                records[f"{prefix}ce_bits"].append(ce_bits.cpu())
                records[f"{prefix}correct"].append((logits.argmax(dim=-1) == labels).cpu())
                records[f"{prefix}margins"].append(probe.margins(inputs, labels).cpu())
                records[f"{prefix}labels"].append(labels.cpu())
        return ce_bits.sum(dim=1).sum() * LN2 / max(labels.numel(), 1)

    def _prefixes(self):
        return ("", "control_") if self.control_probe is not None else ("",)

    def log_records(self, split, records, logger, global_step, **kwargs):
        """Log a split's metrics; returns ``["best-states-dev.ckpt"]`` when the dev CE improved.

        ``-m evaluate`` writes ``evaluate-<split>.json`` at the evaluated checkpoint's step instead.
        """
        if split == "train":
            for prefix in self._prefixes():
                train_ce = torch.stack(records[f"{prefix}ce_bits"]).mean(dim=0)
                for layer, value in zip(self.layer_ids, train_ce.tolist()):
                    logger.add_scalar(scalar_tag("train", f"{prefix}ce_bits", layer), value, global_step)
            return []
        if self._evaluation_sharded():
            keys = [f"{prefix}{name}" for prefix in self._prefixes() for name in _EVALUATION_RECORDS]
            records = distributed.gather_records(self.group, records, keys)
            if records is None:
                return []  # rank 0 reports the whole split
        step = self.checkpoint_step if self.evaluate_mode else global_step
        rows = self._evaluation_rows(split, records, step, "")
        if self.control_probe is not None:
            rows = with_control_columns(rows, self._evaluation_rows(split, records, step, "control_"))
        for row in rows:
            for name in (*METRIC_NAMES, *CONTROL_COLUMNS):
                if row.get(name) is not None:
                    logger.add_scalar(scalar_tag(split, name, row["layer"]), row[name], step)
        note = negative_bound_note(rows)
        tqdm.write(
            f"[mi_probe] {split} at step {step}:\n{format_table(rows, present_columns(rows))}"
            + (f"\n[mi_probe] {note}" if note else "")
        )
        if self.evaluate_mode:
            write_json_atomic(
                self.expdir / f"evaluate-{split}.json",
                {"checkpoint": self.run_args.get("init_ckpt"), "rows": rows, "provenance": self.provenance()},
            )
            return []
        append_jsonl(self.metrics_path, rows)
        write_summary(self.summary_path, read_metrics_log(self.metrics_path), self.provenance())
        mean_ce = sum(row["ce_bits"] for row in rows) / len(rows)
        if split == "dev" and mean_ce < self.best_dev_ce_bits.item():
            self.best_dev_ce_bits.fill_(mean_ce)
            return [f"best-states-{split}.ckpt"]
        return []

    def _evaluation_rows(self, split, records, global_step, prefix):
        metrics = layer_metrics(
            ce_bits=torch.cat(records[f"{prefix}ce_bits"], dim=1).numpy(),
            correct=torch.cat(records[f"{prefix}correct"], dim=1).numpy(),
            margins=torch.cat(records[f"{prefix}margins"], dim=1).numpy(),
            labels=torch.cat(records[f"{prefix}labels"]).numpy(),
            num_classes=len(self.task.classes),
        )
        return [
            {"step": global_step, "split": split, "layer": layer, "probe": self.config["probe"], **row}
            for layer, row in zip(self.layer_ids, metrics)
        ]

    def provenance(self):
        """Versions, inputs and options that produced these numbers."""
        checkpoint = self.run_args.get("upstream_ckpt")
        return {
            **input_provenance(self.manifest),
            "upstream": self.run_args.get("upstream"),
            "upstream_ckpt": checkpoint,
            "upstream_ckpt_sha256": file_sha256(checkpoint),
            "downstream_expert": self.config,
            **self.task.provenance(),
            "layers": self.layer_ids,
            "probe": {key: self.config[key] for key in PROBE_KEYS},
            "control_unscored_segments": self.control_unscored,
            "seed": {"runner": self.run_args.get("seed"), "task": self.options.seed},
        }
