"""Utterance batches for s3prl's runner: the waveform plus the utterance's labelled segments."""

import torch
from torch.utils.data import DataLoader, Dataset

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


def segment_dataloader(utterances, batch_size, shuffle, seed, num_workers=0, controls=None):
    """A DataLoader over utterances (and their control labels); shuffling is seeded so a run is reproducible."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        SegmentDataset(utterances, controls),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        collate_fn=collate_utterances,
    )
