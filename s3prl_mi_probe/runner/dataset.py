"""Utterance batches for s3prl's runner: the waveform plus the utterance's labelled segments."""

import torch
from torch.utils.data import DataLoader, Dataset

from s3prl_mi_probe.common.threads import cpu_share
from s3prl_mi_probe.corpus.audio import load_audio


class SegmentDataset(Dataset):
    """Yields ``(wav, (starts, ends, labels))`` for each utterance of one split, or
    ``(wav, (starts, ends, labels, control_labels))`` when per-utterance control labels are given."""

    def __init__(self, utterances, controls=None):
        self.utterances = utterances
        self.controls = controls

    def __len__(self):
        return len(self.utterances)

    def __getitem__(self, index):
        item = self.utterances[index]
        segments = (item.starts, item.ends, item.labels)
        if self.controls is not None:
            segments += (self.controls[index],)
        return load_audio(item.utterance.audio), segments


def collate_utterances(batch):
    """``(wavs, segments)``: the runner turns each wav into a tensor; segments stay per utterance."""
    wavs, segments = zip(*batch)
    return list(wavs), list(segments)


def segment_dataloader(utterances, batch_size, shuffle, seed, num_workers=0, controls=None, sampler=None):
    """A DataLoader over utterances (and their control labels); shuffling is seeded so a run is reproducible.

    A ``sampler`` (this rank's share under DDP) replaces ``shuffle`` and ``seed``.
    """
    return DataLoader(
        SegmentDataset(utterances, controls),
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        generator=None if sampler is not None else torch.Generator().manual_seed(seed),
        num_workers=num_workers,
        collate_fn=collate_utterances,
    )


MAX_AUTO_WORKERS = 4


def resolve_num_workers(value, processes=1):
    """Loader worker processes for the config's ``num_workers``: a number >= 0 as given, or ``auto``.

    ``auto`` is ``min(4, CPUs of this process's share - 1)``, at least 0: the main process keeps a
    CPU, and the ``processes`` of a DDP run on one machine share its CPUs.
    """
    if value == "auto":
        return max(0, min(MAX_AUTO_WORKERS, cpu_share(processes) - 1))
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"downstream_expert.num_workers must be a number >= 0 or auto, not {value!r}")
    return value
