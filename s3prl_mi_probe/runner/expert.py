"""The s3prl downstream ``mi_probe``: one probe per upstream layer, trained in one run.

The probe (config ``probe``) is ``linear``, ``mlp1``/``mlp2`` (width ``mlp_width``) on standardised
pooled segments, or ``finetune``: copies of the upstream's layers above each probed layer plus a
linear head. With ``control`` set, a second probe of the same kind learns a control task and the
rows gain control accuracy, control bound and selectivity.

Wiring only: the config is checked by :mod:`~s3prl_mi_probe.runner.expert_config`; the per-batch
pool -> standardise -> probe -> record step and the metric rows are
:class:`~s3prl_mi_probe.probe.segment_probes.SegmentProbes`; the reports go through
:mod:`~s3prl_mi_probe.runner.experiment_log`. ``best-states-dev.ckpt`` is kept by mean dev CE over the
layers; ``-m evaluate`` reports its rows at the step of the evaluated checkpoint. Under s3prl's DDP see
:mod:`s3prl_mi_probe.runner.distributed`.
"""

import math
from pathlib import Path

import torch

from s3prl_mi_probe.analyses.merge import merged_rows
from s3prl_mi_probe.common.process_group import current_process_group
from s3prl_mi_probe.common.provenance import file_sha256, input_provenance
from s3prl_mi_probe.corpus.control import per_utterance, unscored_segments
from s3prl_mi_probe.probe.kinds import FINETUNE, build_probe_bank
from s3prl_mi_probe.probe.segment_probes import CONTROL_PREFIX, SegmentProbes
from s3prl_mi_probe.probe.standardize import RunningStandardizer
from s3prl_mi_probe.runner import distributed
from s3prl_mi_probe.runner.dataset import resolve_num_workers, segment_dataloader
from s3prl_mi_probe.runner.experiment_log import ExperimentFiles, log_evaluation, log_training, print_task
from s3prl_mi_probe.runner.expert_config import PROBE_KEYS, check_expert_config, probed_layers
from s3prl_mi_probe.runner.patches import runner_checkpoint_step, runner_upstream


class DownstreamExpert(SegmentProbes):
    """s3prl's DownstreamExpert interface: ``get_dataloader``, ``forward``, ``log_records``."""

    def __init__(self, upstream_dim, upstream_rate, downstream_expert, expdir, **kwargs):
        passed_layers = kwargs.get("mi_probe_layers")
        if not passed_layers:
            raise RuntimeError(
                "mi_probe needs every hidden state: run it through s3prl's runner with s3prl-mi-probe "
                "installed (its import hook), or call s3prl_mi_probe.runner.activate() before the Runner"
            )
        config, options, task, controls = check_expert_config(downstream_expert)
        group = current_process_group()
        layer_ids = probed_layers(config, passed_layers)
        probes = _probes(config, layer_ids, upstream_dim, len(task.classes), options.seed, controls is not None)
        super().__init__(
            layer_ids=layer_ids,
            hidden_layers=passed_layers,
            num_classes=len(task.classes),
            pooling=options.kind.pooling,
            downsample_rate=upstream_rate,
            group=group,
            **probes,
        )
        self.config, self.options, self.task, self.run_args = config, options, task, kwargs
        self.num_workers = resolve_num_workers(config["num_workers"], processes=group.world_size)
        # Per split, per utterance: control labels; segments whose key value never occurs in train are
        # UNSEEN and not scored.
        self.control_unscored = None if controls is None else unscored_segments(controls)
        self.controls = None if controls is None else per_utterance(task, controls)
        self.evaluate_mode = kwargs.get("mode") == "evaluate"
        self.checkpoint_step = runner_checkpoint_step()
        self.register_buffer("best_dev_ce_bits", torch.tensor(math.inf))
        distributed.keep_buffers_out_of_ddp(self)
        # Under DDP, rank 0 writes the experiment's files and reports (as s3prl logs on rank 0).
        fresh = group.leader and kwargs.get("mode") == "train" and not kwargs.get("init_ckpt")
        self.files = ExperimentFiles(expdir, fresh)
        if group.leader:
            print_task(task, options, layer_ids, self.num_workers, self.control_unscored)

    def get_dataloader(self, split, epoch=0):
        """Utterance batches of a split; training batches are reshuffled each epoch (seeded).

        Under DDP: training batches come from this rank's share (``DistributedSampler``); under
        ``-m evaluate`` each rank reads its contiguous share of the split (see ``runner/distributed.py``).
        """
        if split not in self.task.splits:
            raise ValueError(f"mi_probe has splits {sorted(self.task.splits)}, not {split!r}")
        training, items = split == "train", self.task.splits[split]
        seed = self.options.seed
        return segment_dataloader(
            items,
            controls=None if self.controls is None else self.controls[split],
            batch_size=self.config["train_batch_size" if training else "eval_batch_size"],
            shuffle=training,
            seed=seed + epoch,
            num_workers=self.num_workers,
            sampler=distributed.split_sampler(self.group, training, len(items), seed, epoch, self._sharded()),
        )

    def _sharded(self):
        """Whether every rank evaluates a share of the split: ``-m evaluate`` under DDP.

        During DDP training s3prl evaluates on rank 0 alone, which then reads the whole split.
        """
        return self.evaluate_mode and self.group.world_size > 1

    def forward(self, split, features, segments, records, **kwargs):
        """Sum over layers (and the control probe) of the mean CE (nats); records what log_records reports."""
        return self.probe_batch(split, features.hidden, features.lengths, segments, records)

    def log_records(self, split, records, logger, global_step, **kwargs):
        """Log a split's metrics; returns ``["best-states-dev.ckpt"]`` when the dev CE improved.

        ``-m evaluate`` writes ``evaluate-<split>.json`` at the evaluated checkpoint's step instead.
        """
        if split == "train":
            for prefix in self.prefixes():
                log_training(
                    logger, f"{prefix}ce_bits", self.layer_ids, self.train_ce_bits(records, prefix), global_step
                )
            return []
        if self._sharded():
            records = distributed.gather_records(self.group, records, self.record_keys())
            if records is None:
                return []  # rank 0 reports the whole split
        step = self.checkpoint_step if self.evaluate_mode else global_step
        heads = [
            {"step": step, "split": split, "layer": layer, "probe": self.config["probe"]} for layer in self.layer_ids
        ]
        control_rows = None if self.control_probe is None else self.rows(records, heads, CONTROL_PREFIX)
        rows = merged_rows([self.rows(records, heads)], control_rows, seed_columns=False)
        log_evaluation(logger, split, rows, step)
        if self.evaluate_mode:
            self.files.evaluated(split, self.run_args.get("init_ckpt"), rows, self.provenance())
            return []
        self.files.append(rows, self.provenance())
        mean_ce = sum(row["ce_bits"] for row in rows) / len(rows)
        if split == "dev" and mean_ce < self.best_dev_ce_bits.item():
            self.best_dev_ce_bits.fill_(mean_ce)
            return [f"best-states-{split}.ckpt"]
        return []

    def provenance(self):
        """Versions, inputs and options that produced these numbers."""
        checkpoint = self.run_args.get("upstream_ckpt")
        return {
            **input_provenance(Path(self.config["manifest"])),
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


def _probes(config, layer_ids, upstream_dim, num_classes, seed, control):
    """The probe (and the control probe) of ``config`` as :class:`SegmentProbes` keywords: probe banks on
    standardised pooled segments, or copies of the upstream's upper layers with linear heads."""
    if config["probe"] != FINETUNE:
        standardizer = RunningStandardizer(len(layer_ids), upstream_dim)
        banks = [
            build_probe_bank(config["probe"], len(layer_ids), upstream_dim, num_classes, config["mlp_width"], seed)
            for _ in range(2 if control else 1)
        ]
        return {"standardizer": standardizer, "probe": banks[0], "control_probe": banks[1] if control else None}
    from s3prl_mi_probe.finetune.probes import FinetuneProbes
    from s3prl_mi_probe.finetune.upper_layers import PaddingRecorder

    upstream = runner_upstream()
    if upstream is None:
        raise RuntimeError("the finetune probe copies the upstream's layers: build mi_probe through s3prl's Runner")
    padding = PaddingRecorder(upstream)  # the copies must mask exactly the frames the upstream's blocks masked
    copies = [FinetuneProbes(upstream, layer_ids, num_classes) for _ in range(2 if control else 1)]
    return {"frame_lengths": padding.lengths, "probe": copies[0], "control_probe": copies[1] if control else None}
