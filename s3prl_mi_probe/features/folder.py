"""The features folder: per-segment features of every layer, as any tool can write them, for the probes.

Layout (README.md, "Features folders")::

    layer_000.npy, layer_001.npy, ...   one per layer: [N, D_l], float16 or float32, C order
    rows.tsv                            header "split<TAB>label" (+ optional columns), then N rows in
                                        the order of the arrays
    meta.json                           optional: what made the features (a sweep's cache has it)

``split`` is ``train``, ``dev`` or ``test`` (dev may be absent: it is then carved from train), ``label``
any non-empty string. Optional columns: ``group`` (e.g. the speaker: a carved dev split takes whole
groups) and control keys (e.g. ``speaker``, ``word_type``). Reading checks everything first and raises
one :class:`~s3prl_mi_probe.common.problems.ProblemsFound` that lists every problem found.
"""

import json
from array import array
from pathlib import Path

import numpy as np
from tqdm import tqdm

from s3prl_mi_probe.common.atomic import write_text_atomic
from s3prl_mi_probe.common.problems import Problem, ProblemsFound
from s3prl_mi_probe.corpus.manifest import SPLITS
from s3prl_mi_probe.features.npy_rows import NpyRows

ROWS_FILE = "rows.tsv"
META_FILE = "meta.json"
REQUIRED_COLUMNS = ("split", "label")
GROUP_COLUMN = "group"
FEATURE_DTYPES = (np.dtype("float16"), np.dtype("float32"))
REQUIRED_SPLITS = ("train", "test")
SCAN_BYTES = 16 << 20  # rows read at a time when checking values
EXAMPLES = 5  # line numbers shown per problem


def layer_file(root, layer):
    """Path of layer ``layer``'s array in a features folder."""
    return Path(root) / f"layer_{layer:03d}.npy"


def write_rows_tsv(path, columns):
    """Write ``rows.tsv`` from ``{name: values}`` (``split`` and ``label`` first; every value a string).

    Values must not contain tabs or line breaks. Written atomically.
    """
    names = list(REQUIRED_COLUMNS) + [name for name in columns if name not in REQUIRED_COLUMNS]
    values = [list(map(str, columns[name])) for name in names]
    if len({len(column) for column in values}) > 1:
        raise ValueError(f"rows.tsv columns differ in length: {[len(column) for column in values]}")
    bad = {name for name, column in zip(names, values) for value in column if "\t" in value or "\n" in value}
    if bad:
        raise ValueError(f"rows.tsv values hold tabs or line breaks in columns {sorted(bad)}")
    lines = ["\t".join(names), *("\t".join(row) for row in zip(*values))]
    write_text_atomic(path, "\n".join(lines) + "\n")


def write_features_folder(root, layers, splits, labels, columns=None, meta=None):
    """Write a features folder: ``layers`` (L arrays ``[N, D_l]``), per-row ``splits`` and ``labels``,
    optional further ``columns`` (``{name: values}``) and ``meta`` (a JSON-able dict)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for index, layer in enumerate(layers):
        np.save(layer_file(root, index), np.ascontiguousarray(layer))
    write_rows_tsv(root / ROWS_FILE, {"split": splits, "label": labels, **(columns or {})})
    if meta is not None:
        write_text_atomic(root / META_FILE, json.dumps(meta, indent=2) + "\n")
    return root


class _Problems(list):
    """:class:`Problem` s found; ``note_rows`` folds many bad lines of a file into one problem with examples."""

    def note(self, reason, file=None):
        self.append(Problem(file, reason))

    def note_rows(self, file, what, lines):
        if lines:
            shown = ", ".join(str(line) for line in lines[:EXAMPLES])
            more = f" (and {len(lines) - EXAMPLES} more)" if len(lines) > EXAMPLES else ""
            self.note(f"{what} on {len(lines)} line(s): {shown}{more}", file)


class Column:
    """One column of rows.tsv: per-row ``codes`` into the sorted distinct ``values``."""

    def __init__(self, codes, values):
        self.codes, self.values = codes, values

    def strings(self, rows=slice(None)):
        """The column's strings at ``rows``."""
        return self.values[self.codes[rows]]


class FeaturesFolder:
    """A checked features folder: layer readers, per-row splits, labels and further columns.

    ``layers`` are :class:`NpyRows` readers (no memory maps), ``layer_dims`` their widths,
    ``columns`` every rows.tsv column as a :class:`Column` (``split`` and ``label`` included),
    ``meta`` the content of meta.json (empty without one). ``check_values`` scans every layer for
    NaN or infinite rows (one pass over the files, in bounded memory).
    """

    def __init__(self, root, check_values=True, progress=False):
        self.root = Path(root)
        problems = _Problems()
        if not self.root.is_dir():
            raise ProblemsFound(f"features folder {self.root}", [Problem(self.root, "no such folder")])
        self.layers = self._open_layers(problems)
        self.columns = self._read_rows(problems)
        self.num_rows = len(self.columns["split"].codes) if "split" in self.columns else None
        for layer in self.layers:
            if self.num_rows is not None and len(layer) != self.num_rows:
                problems.note(f"{len(layer)} rows, but {ROWS_FILE} has {self.num_rows}", layer.path.name)
        if check_values and self.layers:
            self._check_finite(problems, progress)
        if problems:
            raise ProblemsFound(f"features folder {self.root}", problems)
        meta_path = self.root / META_FILE
        self.meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        self.layer_dims = [layer.shape[1] for layer in self.layers]

    @property
    def num_layers(self):
        return len(self.layers)

    def rows_of(self, split):
        """Row positions of ``split`` (ascending)."""
        return np.flatnonzero(self.columns["split"].codes == SPLITS.index(split))

    def has_split(self, split):
        return bool((self.columns["split"].codes == SPLITS.index(split)).any())

    def column(self, name):
        """The :class:`Column` called ``name``; KeyError naming the columns there are."""
        if name not in self.columns:
            raise KeyError(f"{ROWS_FILE} of {self.root} has no column {name!r}; it has {', '.join(self.columns)}")
        return self.columns[name]

    def _open_layers(self, problems):
        found = sorted(self.root.glob("layer_*.npy"))
        indices = {}
        for path in found:
            stem = path.stem.removeprefix("layer_")
            if stem.isdigit():
                indices[int(stem)] = path
        if not indices:
            problems.note("no layer files (layer_000.npy, layer_001.npy, ...)")
            return []
        missing = [layer_file(self.root, k).name for k in range(max(indices) + 1) if k not in indices]
        if missing:
            problems.note(f"missing layer file(s) {', '.join(missing)} (layers are numbered from 000 without gaps)")
        layers = []
        for index in sorted(indices):
            path = indices[index]
            try:
                reader = NpyRows(path)
            except (OSError, ValueError) as error:
                problems.note(f"not a readable .npy array ({error})", path.name)
                continue
            if len(reader.shape) != 2:
                problems.note(f"shape {reader.shape}, expected [rows, dims]", path.name)
            elif reader.dtype not in FEATURE_DTYPES:
                problems.note(f"dtype {reader.dtype}, expected float16 or float32", path.name)
            else:
                layers.append(reader)
        return layers

    def _read_rows(self, problems):
        """Every column of rows.tsv as a :class:`Column`; problems appended, line by line."""
        path = self.root / ROWS_FILE
        if not path.is_file():
            problems.note(f"no {ROWS_FILE} (header split<TAB>label, one line per row)")
            return {}
        with open(path, encoding="utf-8") as stream:
            names = stream.readline().rstrip("\n").split("\t")
            absent = [name for name in REQUIRED_COLUMNS if name not in names]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if absent or repeated:
                problems.note(
                    f"header {names}: "
                    + "; ".join(
                        ([f"missing column(s) {', '.join(absent)}"] if absent else [])
                        + ([f"repeated column(s) {', '.join(repeated)}"] if repeated else [])
                    ),
                    ROWS_FILE,
                )
                return {}
            codes = [array("i") for _ in names]
            seen = [{} for _ in names]
            wrong_width = []
            for number, line in enumerate(stream, start=2):
                fields = line.rstrip("\n").split("\t")
                if len(fields) != len(names):
                    wrong_width.append(number)
                    fields = (fields + [""] * len(names))[: len(names)]
                for column, value in enumerate(fields):
                    codes[column].append(seen[column].setdefault(value, len(seen[column])))
        problems.note_rows(ROWS_FILE, f"number of fields differs from the header's {len(names)}", wrong_width)
        columns = {name: _sorted_column(codes[k], seen[k]) for k, name in enumerate(names)}
        self._check_splits(columns, problems)
        label = columns["label"]
        if label.values.size and label.values[0] == "":  # values are sorted: "" comes first
            problems.note_rows(ROWS_FILE, "empty label", list(np.flatnonzero(label.codes == 0) + 2))
        return columns

    def _check_splits(self, columns, problems):
        """Unknown split names are problems; the split column is re-coded as indices into SPLITS."""
        split = columns["split"]
        known = np.array([value in SPLITS for value in split.values], dtype=bool)
        for code in np.flatnonzero(~known):
            lines = list(np.flatnonzero(split.codes == code) + 2)
            problems.note_rows(ROWS_FILE, f"unknown split {split.values[code]!r} (use train, dev or test)", lines)
        recode = np.array([SPLITS.index(value) if value in SPLITS else -1 for value in split.values], dtype=np.int8)
        columns["split"] = Column(recode[split.codes], np.array(SPLITS, dtype=object))
        present = set(recode[np.unique(split.codes)].tolist()) if split.codes.size else set()
        for name in REQUIRED_SPLITS:
            if SPLITS.index(name) not in present:
                problems.note(f"split {name!r} has no rows", ROWS_FILE)

    def _check_finite(self, problems, progress):
        """Rows holding NaN or infinite values, per layer, as problems."""
        total = sum(len(layer) for layer in self.layers)
        bar = tqdm(total=total, desc="check features", unit="row", disable=not progress, leave=False)
        for layer in self.layers:
            step = max(1, SCAN_BYTES // max(layer.row_bytes, 1))
            bad = []
            for start in range(0, len(layer), step):
                block = layer.read(slice(start, start + step))
                bad.extend((np.flatnonzero(~np.isfinite(block).all(axis=1)) + start).tolist())
                bar.update(block.shape[0])
            problems.note_rows(layer.path.name, "NaN or infinite values (rows.tsv lines)", [row + 2 for row in bad])
        bar.close()


def _sorted_column(codes, seen):
    """A :class:`Column` whose values are sorted, from first-seen codes and their ``{value: code}``."""
    values = np.array(list(seen), dtype=object)
    order = np.argsort(values.astype(str), kind="stable") if values.size else np.zeros(0, dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return Column(rank[np.frombuffer(codes, dtype=np.int32)], values[order])
