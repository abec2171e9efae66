"""All-layer extraction through s3prl's hub into a :class:`LayerCache`: each utterance runs once.

Feature slicing (default): the whole utterance goes through the upstream and each segment is the
mean of the frames whose centre lies inside it (the model saw the context); a frame task's 10 ms
frame is the one upstream frame covering its centre. Audio slicing: each segment's audio goes
through the upstream alone and is the mean of its frames (as the paper's code does). Utterances
are processed in fixed, length-sorted chunks, so a resumed or sharded run writes exactly the same
numbers; tasks over the same utterances can share each forward (:meth:`Extractor.extract_tasks`).
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
        pooling = task.options.kind.pooling
        if pooling == "centre" and self.slicing == "audio":
            raise ValueError(f"--slicing audio does not apply to the frame task {task.options.task!r}")
        inputs = key_inputs(
            self.spec,
            self.checkpoint_sha256,
            manifest_sha256,
            task.options,
            self.slicing,
            self.dtype,
            self.batch_size,
            pooling,
        )
        safe_label = self.spec.label.replace("/", "_").replace(":", "_")
        return cache_dir / f"{safe_label}-{task.options.task}-{cache_key(**inputs)[:16]}", inputs

    def extract(self, task, manifest_sha256, cache_dir, rank=0, world_size=1, barrier=None, progress=True):
        """Fill (or reuse) the cache of ``task``; ranks fill disjoint chunks. Returns the LayerCache."""
        return self.extract_tasks([task], manifest_sha256, cache_dir, rank, world_size, barrier, progress)[0]

    def extract_tasks(self, tasks, manifest_sha256, cache_dir, rank=0, world_size=1, barrier=None, progress=True):
        """Fill (or reuse) the caches of several tasks of one manifest; returns their LayerCaches in order.

        With feature slicing, tasks over the same utterances (e.g. the word, phone and frame tasks
        of one corpus) share every upstream forward: each chunk runs once and is pooled for each
        of them. Each cache holds exactly the bytes that its own extraction would write.
        """
        barrier = barrier or (lambda: None)
        targets = [_Target(task, *self.cache_root(cache_dir, task, manifest_sha256)) for task in tasks]
        groups = {}
        for target in targets:
            if not target.complete:
                key = target.utterance_ids if self.slicing == "feature" else id(target)
                groups.setdefault(key, []).append(target)
        for group in groups.values():
            self._fill(group, rank, world_size, barrier, progress)
        return [LayerCache(target.root) for target in targets]

    def _fill(self, targets, rank, world_size, barrier, progress):
        """Extract the chunks missing from the caches of ``targets`` (tasks over the same utterances)."""
        chunks = plan_chunks(targets[0].items, self.batch_size)
        if rank == 0:
            for target in targets:
                if not LayerCache.exists(target.root):
                    self._lay_out(target, len(chunks))
        barrier()
        for target in targets:
            target.open()
        todo = [
            chunk
            for chunk in range(len(chunks))
            if chunk % world_size == rank and any(chunk not in target.done for target in targets)
        ]
        names = ", ".join(target.task.options.task for target in targets)
        bar = tqdm(todo, desc=f"extract {self.spec.label} ({names})", unit="batch", disable=not progress or rank != 0)
        for chunk in bar:
            missing = [target for target in targets if chunk not in target.done]
            chunk_items = [[target.items[item] for item in chunks[chunk]] for target in missing]
            pooled = self._pool_chunk([(items, target.task) for items, target in zip(chunk_items, missing)])
            for target, items, per_utterance in zip(missing, chunk_items, pooled):
                target.write(chunk, items, per_utterance, rank)
        barrier()
        if rank == 0:
            for target in targets:
                target.cache.mark_complete()
        barrier()

    def _lay_out(self, target, num_chunks):
        meta = {
            "upstream": self.spec.label,
            "key_inputs": target.inputs,
            "num_rows": int(target.labels.size),
            "layer_dims": self.layer_dims,
            "downsample_rate": self.downsample_rate,
            "dtype": self.dtype,
            "num_chunks": num_chunks,
            "classes": target.task.classes,
        }
        table = rows_table(target.items, target.split_codes, target.labels, target.task.classes)
        LayerCache.create(target.root, meta, target.split_codes, target.labels, table)

    @torch.no_grad()
    def _pool_chunk(self, chunk_tasks):
        """Per ``(chunk_items, task)`` pair (same utterances): per utterance, a list over layers of pooled
        segments ``[S, D_l]`` (numpy). Feature slicing runs the upstream once for all pairs."""
        first_items = chunk_tasks[0][0]
        waves = [load_audio(utterance.utterance.audio) for utterance, _ in first_items]
        if self.slicing == "feature":
            layers = self._forward(waves)
            frame_counts = [valid_frames(len(wave), self.downsample_rate, layers[0].size(1)) for wave in waves]
            return [self._pool_in_context(items, task, layers, frame_counts) for items, task in chunk_tasks]
        return [
            [self._pool_segment_audio(utterance, wave) for (utterance, _), wave in zip(items, waves)]
            for items, _ in chunk_tasks
        ]

    def _forward(self, waves):
        tensors = [torch.from_numpy(wave).to(self.device) for wave in waves]
        return hidden_state_list(self.upstream(tensors), "hidden_states")

    def _pool_in_context(self, chunk_items, task, layers, frame_counts):
        spans = [(utterance.starts, utterance.ends) for utterance, _ in chunk_items]
        matrices = batch_pooling_matrices(spans, frame_counts, self.downsample_rate, task.options.kind.pooling)
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


class _Target:
    """One task's cache being filled: its rows, folder, memmaps and journal of done chunks."""

    def __init__(self, task, root, inputs):
        self.task, self.root, self.inputs = task, root, inputs
        self.items, self.split_codes, self.labels = layout_rows(task)
        self.utterance_ids = tuple(utterance.utterance.id for utterance, _ in self.items)
        self.complete = LayerCache.exists(root) and LayerCache(root).complete

    def open(self):
        """Open the laid-out cache for writing and read its journal."""
        self.cache = LayerCache(self.root)
        self.done = self.cache.done_chunks()
        self.layers = [self.cache.layer(k, mode="r+") for k in range(self.cache.num_layers)]

    def write(self, chunk, chunk_items, per_utterance, rank):
        """Write a chunk's pooled rows, flush them, then journal the chunk."""
        for (_utterance, first_row), values_of_layers in zip(chunk_items, per_utterance):
            for layer, values in zip(self.layers, values_of_layers):
                layer[first_row : first_row + len(values)] = values
        for layer in self.layers:
            layer.flush()
        self.cache.mark_done([chunk], rank)
