"""On-disk cache of pooled segment features: one memory-mapped ``.npy`` per layer.

Layout of a cache folder (a features folder, see :mod:`s3prl_mi_probe.features.folder`, plus the
extraction's own files)::

    meta.json              rows, layer widths, dtype, chunk count, what the key covers
    rows.npz               per row: split code and class index
    rows.tsv               per row: split, label, and where known group (= speaker), speaker, word_type
    layer_000.npy ...      [rows, D_l] memory maps, preallocated
    done-rank<r>.txt       indices of chunks whose rows are written and flushed (one per line)
    complete.json          written last: the cache is whole

Rows are written in fixed chunks of utterances; a chunk's index is journalled only after its rows
are flushed, so a run killed mid-extraction resumes with the chunks that are missing and produces
the same bytes. Several processes (ranks) can fill disjoint chunks of one cache.
"""

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from s3prl_mi_probe.common.atomic import write_json_atomic
from s3prl_mi_probe.features.folder import GROUP_COLUMN, META_FILE, ROWS_FILE, layer_file, write_rows_tsv

CACHE_FORMAT = 2  # 2: the cache is a features folder (rows.tsv)
SPLIT_CODES = {"train": 0, "dev": 1, "test": 2}


def cache_key(**inputs):
    """A stable hex key of everything that determines the cached numbers."""
    text = json.dumps({"format": CACHE_FORMAT, **inputs}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def key_inputs(spec, checkpoint_sha256, manifest_sha256, options, slicing, dtype, batch_size, pooling="mean"):
    """What a cache key covers: upstream, checkpoint and manifest content, task options, slicing,
    pooling (``mean`` or ``centre``), and the batching (padding can change an upstream's output)."""
    return {
        "upstream": spec.name,
        "checkpoint_sha256": checkpoint_sha256,
        "manifest_sha256": manifest_sha256,
        "task": asdict(options),
        "slicing": slicing,
        "pooling": pooling,
        "dtype": dtype,
        "batch_size": batch_size,
    }


def rows_table(items, split_codes, labels, classes):
    """The rows.tsv columns of a cache: split and label, and ``group``/``speaker`` and ``word_type``
    (the word a phone lies in) where every utterance has them; ``items`` are ``(UtteranceSegments,
    first row)`` in row order."""
    split_names = {code: split for split, code in SPLIT_CODES.items()}
    table = {"split": [split_names[int(code)] for code in split_codes], "label": [classes[k] for k in labels]}
    utterances = [utterance for utterance, _ in items]
    if utterances and all(item.utterance.speaker for item in utterances):
        speakers = [str(item.utterance.speaker) for item in utterances for _ in item.labels]
        table[GROUP_COLUMN], table["speaker"] = speakers, speakers
    if utterances and all(item.words is not None for item in utterances):
        table["word_type"] = [str(word) for item in utterances for word in item.words]
    return table


class LayerCache:
    """A cache folder: its memmaps, row labels and journal."""

    def __init__(self, root):
        self.root = Path(root)
        self.meta = json.loads((self.root / META_FILE).read_text())
        arrays = np.load(self.root / "rows.npz")
        self.split_codes = arrays["split_codes"]
        self.labels = arrays["labels"]

    @classmethod
    def create(cls, root, meta, split_codes, labels, table):
        """Lay out a new cache (memmaps preallocated, ``table`` as rows.tsv); meta.json is written last, atomically."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        np.savez(root / "rows.npz", split_codes=split_codes, labels=labels)
        write_rows_tsv(root / ROWS_FILE, table)
        for layer, dim in enumerate(meta["layer_dims"]):
            np.lib.format.open_memmap(
                layer_file(root, layer), mode="w+", dtype=meta["dtype"], shape=(meta["num_rows"], dim)
            ).flush()
        write_json_atomic(root / META_FILE, meta)
        return cls(root)

    @staticmethod
    def exists(root):
        """Whether ``root`` holds a laid-out cache (complete or not)."""
        return (Path(root) / META_FILE).is_file()

    @staticmethod
    def unfinished(root):
        """Whether ``root`` is a cache laid out by an extraction that has not finished (no complete.json)."""
        meta, complete = Path(root) / META_FILE, Path(root) / "complete.json"
        return meta.is_file() and "num_chunks" in json.loads(meta.read_text()) and not complete.is_file()

    @property
    def complete(self):
        return (self.root / "complete.json").is_file()

    @property
    def num_layers(self):
        return len(self.meta["layer_dims"])

    def layer(self, index, mode="r"):
        """The memmap ``[rows, D_l]`` of a layer."""
        return np.load(layer_file(self.root, index), mmap_mode=mode)

    def done_chunks(self):
        """Chunks journalled as written by any rank (a torn last line is ignored)."""
        done = set()
        for journal in self.root.glob("done-rank*.txt"):
            text = journal.read_text()
            lines = text.split("\n")[:-1]  # only lines finished by a newline count
            done.update(int(line) for line in lines if line.strip())
        return done

    def mark_done(self, chunks, rank=0):
        """Journal chunks whose rows were flushed."""
        with open(self.root / f"done-rank{rank}.txt", "a") as stream:
            stream.write("".join(f"{chunk}\n" for chunk in chunks))
            stream.flush()

    def mark_complete(self):
        write_json_atomic(self.root / "complete.json", {"num_rows": self.meta["num_rows"]})

    def split(self, split):
        """``(layers, labels)`` of a split: a list of per-layer arrays ``[N_s, D_l]`` (memmap views)."""
        rows = np.flatnonzero(self.split_codes == SPLIT_CODES[split])
        start, stop = (rows[0], rows[-1] + 1) if rows.size else (0, 0)
        if rows.size and stop - start != rows.size:
            raise ValueError(f"cache {self.root}: rows of split {split!r} are not contiguous")
        return [self.layer(k)[start:stop] for k in range(self.num_layers)], self.labels[start:stop]
