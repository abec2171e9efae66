"""The s3prl downstream ``mi_probe``: one linear probe per upstream layer, trained in one run.

Wiring only: the corpus comes from :mod:`s3prl_mi_probe.corpus`, segment pooling from
:mod:`s3prl_mi_probe.features`, the probe and its metrics from :mod:`s3prl_mi_probe.probe` and
:mod:`s3prl_mi_probe.metrics`. Dev and test metrics go to TensorBoard
(``mi_probe/<split>/layer_<k>/<metric>``) and to ``EXPDIR/metrics.jsonl``; ``best-states-dev.ckpt``
is kept by mean dev CE over the layers; ``EXPDIR/summary.json`` holds per layer the test metrics at
that layer's best dev step.
"""

import math
from dataclasses import fields
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from s3prl_mi_probe.atomic import append_jsonl, write_json_atomic
from s3prl_mi_probe.corpus.segments import TaskOptions, build_task
from s3prl_mi_probe.downstream.dataset import segment_dataloader
from s3prl_mi_probe.downstream.summary import read_metrics_log, write_summary
from s3prl_mi_probe.features.pooling import pool_segments, segment_pooling_matrix
from s3prl_mi_probe.metrics.bounds import LN2, cross_entropy_bits
from s3prl_mi_probe.metrics.layer_metrics import METRIC_NAMES, layer_metrics
from s3prl_mi_probe.probe.linear import LayerwiseLinearProbe
from s3prl_mi_probe.probe.standardize import RunningStandardizer
from s3prl_mi_probe.provenance import file_sha256, package_versions
from s3prl_mi_probe.report.table import format_table

LOADER_KEYS = {"manifest": None, "train_batch_size": 8, "eval_batch_size": 8, "num_workers": 0}
TABLE_COLUMNS = ("layer", "mi_bits", "h_y_bits", "ce_bits", "accuracy", "margin_median", "margin_positive_frac")


def task_options_from_config(config):
    """TaskOptions from the ``downstream_expert`` config; unknown keys are an error naming them."""
    option_names = {field.name for field in fields(TaskOptions)}
    unknown = sorted(set(config) - option_names - set(LOADER_KEYS))
    if unknown:
        raise ValueError(
            f"unknown downstream_expert config keys {unknown}; known: {sorted(option_names | set(LOADER_KEYS))}"
        )
    if not config.get("manifest"):
        raise ValueError("downstream_expert.manifest is required (a TSV: id, audio, alignment, split)")
    options = {name: value for name, value in config.items() if name in option_names}
    if "silence_labels" in options:
        options["silence_labels"] = tuple(options["silence_labels"])
    return TaskOptions(**options)


class DownstreamExpert(nn.Module):
    """s3prl's DownstreamExpert interface: ``get_dataloader``, ``forward``, ``log_records``."""

    def __init__(self, upstream_dim, upstream_rate, downstream_expert, expdir, **kwargs):
        super().__init__()
        self.layer_ids = kwargs.get("mi_probe_layers")
        if not self.layer_ids:
            raise RuntimeError(
                "mi_probe needs every hidden state: run it through s3prl's runner with s3prl-mi-probe "
                "installed (its import hook), or call s3prl_mi_probe.registry.activate() before the Runner"
            )
        self.config = {**LOADER_KEYS, **downstream_expert}
        self.options = task_options_from_config(downstream_expert)
        self.manifest = Path(self.config["manifest"])
        self.task = build_task(self.manifest, self.options)
        self.upstream_rate = upstream_rate
        self.expdir = Path(expdir)
        self.run_args = kwargs
        num_layers, num_classes = len(self.layer_ids), len(self.task.classes)
        self.standardizer = RunningStandardizer(num_layers, upstream_dim)
        self.probe = LayerwiseLinearProbe(num_layers, upstream_dim, num_classes)
        self.register_buffer("best_dev_ce_bits", torch.tensor(math.inf))
        self.metrics_path = self.expdir / "metrics.jsonl"
        self.summary_path = self.expdir / "summary.json"
        if kwargs.get("mode") == "train" and not kwargs.get("init_ckpt"):
            # A new experiment in this folder: earlier results must not mix into its summary.
            self.metrics_path.unlink(missing_ok=True)
            self.summary_path.unlink(missing_ok=True)
        self._print_task()

    def _print_task(self):
        counts = {split: len(items) for split, items in self.task.splits.items()}
        segments = {split: sum(len(item.labels) for item in items) for split, items in self.task.splits.items()}
        tqdm.write(
            f"[mi_probe] task={self.options.task} classes={len(self.task.classes)} layers={self.layer_ids} "
            f"utterances={counts} segments={segments} dropped={ {s: dict(c) for s, c in self.task.dropped.items()} }"
            + (" (dev carved from train)" if self.task.dev_carved else "")
        )

    def get_dataloader(self, split, epoch=0):
        """Utterance batches of a split; training batches are reshuffled each epoch (seeded)."""
        if split not in self.task.splits:
            raise ValueError(f"mi_probe has splits {sorted(self.task.splits)}, not {split!r}")
        training = split == "train"
        return segment_dataloader(
            self.task.splits[split],
            batch_size=self.config["train_batch_size" if training else "eval_batch_size"],
            shuffle=training,
            seed=self.options.seed + epoch,
            num_workers=self.config["num_workers"],
        )

    def _pool(self, features, segments):
        """Segment representations ``[L, S, D]`` and labels ``[S]`` of a batch."""
        pooled, labels = [], []
        for index, (starts, ends, segment_labels) in enumerate(segments):
            num_frames = int(features.lengths[index])
            matrix = segment_pooling_matrix(starts, ends, num_frames, self.upstream_rate)
            pooled.append(pool_segments(features.hidden[:, index, :num_frames], matrix))
            labels.append(torch.as_tensor(segment_labels, dtype=torch.long))
        device = features.hidden.device
        return torch.cat(pooled, dim=1), torch.cat(labels).to(device)

    def forward(self, split, features, segments, records, **kwargs):
        """Sum over layers of the mean CE (nats); records what log_records reports."""
        pooled, labels = self._pool(features, segments)
        if split == "train" and self.training:
            self.standardizer.update(pooled)
        standardized = self.standardizer(pooled)
        logits = self.probe(standardized)
        ce_bits = cross_entropy_bits(logits, labels)  # [L, S]
        if split == "train":
            records["ce_bits"].append(ce_bits.detach().mean(dim=1).cpu())
        else:
            records["ce_bits"].append(ce_bits.cpu())
            records["correct"].append((logits.argmax(dim=-1) == labels).cpu())
            records["margins"].append(self.probe.margins(standardized, labels).cpu())
            records["labels"].append(labels.cpu())
        return ce_bits.mean(dim=1).sum() * LN2

    def log_records(self, split, records, logger, global_step, **kwargs):
        """Log a split's metrics; returns ``["best-states-dev.ckpt"]`` when the dev CE improved."""
        if split == "train":
            train_ce = torch.stack(records["ce_bits"]).mean(dim=0)
            for layer, value in zip(self.layer_ids, train_ce.tolist()):
                logger.add_scalar(f"mi_probe/train/layer_{layer}/ce_bits", value, global_step)
            return []
        rows = self._evaluation_rows(split, records, global_step)
        for row in rows:
            for name in METRIC_NAMES:
                logger.add_scalar(f"mi_probe/{split}/layer_{row['layer']}/{name}", row[name], global_step)
        tqdm.write(f"[mi_probe] {split} at step {global_step}:\n{format_table(rows, TABLE_COLUMNS)}")
        if self.run_args.get("mode") == "evaluate":
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

    def _evaluation_rows(self, split, records, global_step):
        metrics = layer_metrics(
            ce_bits=torch.cat(records["ce_bits"], dim=1).numpy(),
            correct=torch.cat(records["correct"], dim=1).numpy(),
            margins=torch.cat(records["margins"], dim=1).numpy(),
            labels=torch.cat(records["labels"]).numpy(),
            num_classes=len(self.task.classes),
        )
        return [
            {"step": global_step, "split": split, "layer": layer, **row} for layer, row in zip(self.layer_ids, metrics)
        ]

    def provenance(self):
        """Versions, inputs and options that produced these numbers."""
        checkpoint = self.run_args.get("upstream_ckpt")
        return {
            "versions": package_versions(),
            "upstream": self.run_args.get("upstream"),
            "upstream_ckpt": checkpoint,
            "upstream_ckpt_sha256": file_sha256(checkpoint),
            "manifest": str(self.manifest.resolve()),
            "manifest_sha256": file_sha256(self.manifest),
            "downstream_expert": self.config,
            "classes": self.task.classes,
            "layers": self.layer_ids,
            "seed": {"runner": self.run_args.get("seed"), "task": self.options.seed},
        }
