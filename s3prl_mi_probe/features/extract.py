"""All-layer extraction through s3prl's hub into a :class:`LayerCache`: each utterance runs once.

Feature slicing (default): the whole utterance goes through the upstream and each segment is the
mean of the frames whose centre lies inside it (the model saw the context). Audio slicing: each
segment's audio goes through the upstream alone and is the mean of its frames (as the paper's
code does). Utterances are processed in fixed, length-sorted chunks, so a resumed or sharded run
writes exactly the same numbers.
"""

import numpy as np
import torch
from tqdm import tqdm

from s3prl_mi_probe.common.provenance import file_sha256
from s3prl_mi_probe.corpus.audio import SAMPLE_RATE, load_audio
from s3prl_mi_probe.features.batching import length_sorted_batches
from s3prl_mi_probe.features.cache import SPLIT_CODES, LayerCache, cache_key, key_inputs, rows_table
from s3prl_mi_probe.features.hidden_states import describe_upstream, hidden_state_list
from s3prl_mi_probe.features.pooling import batch_pooling_matrices, pool_batch, valid_frames

MIN_SEGMENT_SAMPLES = 400  # one 25 ms frame: shorter segment audio is zero padded (audio slicing)


def layout_rows(task):
    """``(items, split_codes, labels)``: utterances with their first row, rows ordered by split."""
    items, split_codes, labels, row = [], [], [], 0
    for split in ("train", "dev", "test"):
        for utterance in task.splits.get(split, []):
            items.append((utterance, row))
            row += len(utterance.labels)
            split_codes.append(np.full(len(utterance.labels), SPLIT_CODES[split], dtype=np.int8))
            labels.append(utterance.labels)
    return items, np.concatenate(split_codes), np.concatenate(labels).astype(np.int64)


def plan_chunks(items, batch_size):
    """Chunks of item indices, by ascending utterance length (stable), ``batch_size`` utterances each."""
    return length_sorted_batches([utterance.num_samples for utterance, _ in items], batch_size)


class Extractor:
    """Runs one upstream over a task's utterances and writes pooled segments to a cache."""

    def __init__(self, spec, device="cpu", slicing="feature", dtype="float32", batch_size=8):
        if slicing not in ("feature", "audio"):
            raise ValueError(f"slicing must be 'feature' or 'audio', not {slicing!r}")
        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', not {dtype!r}")
        self.spec, self.device, self.slicing, self.dtype, self.batch_size = spec, device, slicing, dtype, batch_size
        self.upstream = spec.load(device)
        self.checkpoint_sha256 = file_sha256(spec.checkpoint)
        self.layer_dims, self.downsample_rate = describe_upstream(self.upstream, device)

    def cache_root(self, cache_dir, task, manifest_sha256):
        """The cache folder of this upstream, task and options."""
        inputs = key_inputs(
            self.spec,
            self.checkpoint_sha256,
            manifest_sha256,
            task.options,
            self.slicing,
            self.dtype,
            self.batch_size,
        )
        safe_label = self.spec.label.replace("/", "_").replace(":", "_")
        return cache_dir / f"{safe_label}-{task.options.task}-{cache_key(**inputs)[:16]}", inputs

    def extract(self, task, manifest_sha256, cache_dir, rank=0, world_size=1, barrier=None, progress=True):
        """Fill (or reuse) the cache of ``task``; ranks fill disjoint chunks. Returns the LayerCache."""
        barrier = barrier or (lambda: None)
        root, inputs = self.cache_root(cache_dir, task, manifest_sha256)
        if LayerCache.exists(root) and LayerCache(root).complete:
            return LayerCache(root)
        items, split_codes, labels = layout_rows(task)
        chunks = plan_chunks(items, self.batch_size)
        if rank == 0 and not LayerCache.exists(root):
            meta = {
                "upstream": self.spec.label,
                "key_inputs": inputs,
                "num_rows": int(labels.size),
                "layer_dims": self.layer_dims,
                "downsample_rate": self.downsample_rate,
                "dtype": self.dtype,
                "num_chunks": len(chunks),
                "classes": task.classes,
            }
            LayerCache.create(root, meta, split_codes, labels, rows_table(items, split_codes, labels, task.classes))
        barrier()
        cache = LayerCache(root)
        done = cache.done_chunks()
        todo = [index for index in range(len(chunks)) if index % world_size == rank and index not in done]
        layers = [cache.layer(k, mode="r+") for k in range(cache.num_layers)]
        bar = tqdm(todo, desc=f"extract {self.spec.label}", unit="batch", disable=not progress or rank != 0)
        for chunk_index in bar:
            chunk_items = [items[index] for index in chunks[chunk_index]]
            for (_utterance, first_row), pooled in zip(chunk_items, self._pool_chunk(chunk_items)):
                for layer, values in zip(layers, pooled):
                    layer[first_row : first_row + len(values)] = values
            for layer in layers:
                layer.flush()
            cache.mark_done([chunk_index], rank)
        barrier()
        if rank == 0:
            cache.mark_complete()
        barrier()
        return cache

    @torch.no_grad()
    def _pool_chunk(self, chunk_items):
        """Per utterance of a chunk: a list over layers of pooled segments ``[S, D_l]`` (numpy)."""
        waves = [load_audio(utterance.utterance.audio) for utterance, _ in chunk_items]
        if self.slicing == "feature":
            return self._pool_in_context(chunk_items, waves)
        return [self._pool_segment_audio(utterance, wave) for (utterance, _), wave in zip(chunk_items, waves)]

    def _forward(self, waves):
        tensors = [torch.from_numpy(wave).to(self.device) for wave in waves]
        return hidden_state_list(self.upstream(tensors), "hidden_states")

    def _pool_in_context(self, chunk_items, waves):
        layers = self._forward(waves)
        frame_counts = [valid_frames(len(wave), self.downsample_rate, layers[0].size(1)) for wave in waves]
        spans = [(utterance.starts, utterance.ends) for utterance, _ in chunk_items]
        matrices = batch_pooling_matrices(spans, frame_counts, self.downsample_rate)
        boundaries = np.cumsum([len(utterance.labels) for utterance, _ in chunk_items])[:-1]
        per_layer = [
            np.split(self._to_numpy(pool_batch(layer.float(), matrices).cpu()), boundaries) for layer in layers
        ]
        return [list(utterance_layers) for utterance_layers in zip(*per_layer)]

    def _pool_segment_audio(self, utterance, wave):
        pieces = []
        for start, end in zip(utterance.starts, utterance.ends):
            piece = wave[int(round(start * SAMPLE_RATE)) : int(round(end * SAMPLE_RATE))]
            pieces.append(np.pad(piece, (0, max(0, MIN_SEGMENT_SAMPLES - len(piece)))))
        layers = self._forward(pieces)
        frames = [max(1, valid_frames(len(piece), self.downsample_rate, layers[0].size(1))) for piece in pieces]
        matrix = torch.zeros(len(pieces), layers[0].size(1))
        for row, count in enumerate(frames):
            matrix[row, :count] = 1.0 / count
        return [self._to_numpy(torch.einsum("st,std->sd", matrix, layer.float().cpu())) for layer in layers]

    def _to_numpy(self, tensor):
        return tensor.numpy().astype(self.dtype)
