"""The ``mi_probe`` expert under s3prl's DDP (``python -m torch.distributed.launch ... --local_rank``).

What s3prl 0.4.18's runner (``s3prl/downstream/runner.py``) calls on which rank:

* every rank trains: ``get_dataloader("train", epoch=...)`` and the expert's forward on its own
  batches, the expert wrapped in ``DistributedDataParallel`` (which averages the gradients and, by
  default, broadcasts rank 0's buffers before each forward);
* during training only rank 0 logs and evaluates: ``log_records("train")`` and ``evaluate(dev/test)``
  (``get_dataloader``, forward, ``log_records``) run on rank 0 alone, which also saves the checkpoints;
* ``-m evaluate`` runs ``evaluate`` on every rank.

So the expert shards training batches with a ``DistributedSampler`` (shuffled, seeded, ``set_epoch``
from the epoch s3prl passes); evaluates the whole split on rank 0 during training (no collective
there: the other ranks are training); and under ``-m evaluate`` gives each rank a contiguous,
unpadded share of the split and gathers the per-segment records on rank 0 in split order, so the
metrics cover the whole split with every segment counted once. The standardiser's running statistics
are all-reduced at every training update (every rank trains in step, see
:class:`~s3prl_mi_probe.probe.segment_probes.SegmentProbes`), so all ranks standardise with the
statistics of all ranks' batches; the expert's buffers are kept out of DDP's broadcast, which would
otherwise overwrite them with rank 0's and, in rank 0's lone evaluation, start a collective the
other ranks never join. The training CE that s3prl logs is rank 0's share, as for every s3prl
downstream.
"""

import torch
from torch.utils.data import DistributedSampler


def training_sampler(group, num_items, seed, epoch):
    """This rank's shuffled share of the training items for ``epoch`` (None in a lone process);
    ``group`` is the :class:`~s3prl_mi_probe.common.process_group.ProcessGroup` s3prl's runner started.

    ``DistributedSampler`` pads the shares to equal length with a few repeated items, so that every
    rank runs the same number of steps, as DDP needs.
    """
    if group.world_size == 1:
        return None
    sampler = DistributedSampler(
        range(num_items), num_replicas=group.world_size, rank=group.rank, shuffle=True, seed=seed
    )
    sampler.set_epoch(epoch)
    return sampler


def split_sampler(group, training, num_items, seed, epoch, evaluation_sharded):
    """The sampler of a split's loader on this rank: the training share of ``epoch`` (:func:`training_sampler`),
    this rank's contiguous share of a held-out split when ``evaluation_sharded`` (``-m evaluate`` under
    DDP), else None (the whole split, in order)."""
    if training:
        return training_sampler(group, num_items, seed, epoch)
    return group.share(range(num_items)) if evaluation_sharded else None


def gather_records(group, records, keys):
    """On rank 0: per key, the records of all ranks concatenated along segments in rank order; None elsewhere.

    ``records[key]`` is a list of per-batch tensors whose last dimension is the segment; with contiguous
    shares (``group.share``) the result is in the order a lone process would have produced.
    """
    gathered = group.gather({key: torch.cat(records[key], dim=-1) for key in keys if records[key]})
    if not group.leader:
        return None
    return {
        key: [torch.cat([shard[key] for shard in gathered if key in shard], dim=-1)]
        for key in keys
        if any(key in shard for shard in gathered)
    }


def keep_buffers_out_of_ddp(module):
    """Exclude every buffer of ``module`` from DDP's broadcast (``_ddp_params_and_buffers_to_ignore``)."""
    module._ddp_params_and_buffers_to_ignore = [name for name, _ in module.named_buffers()]
