"""TIMIT: NIST SPHERE audio with hand-labelled phone (.PHN) and word (.WRD) boundaries."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import soundfile

from s3prl_mi_probe.common.atomic import write_bytes_atomic
from s3prl_mi_probe.common.problems import Problem, ProblemsFound, unusable
from s3prl_mi_probe.corpus.manifest import ManifestRow
from s3prl_mi_probe.corpus.reader import Interval
from s3prl_mi_probe.corpus.recipes.common import finish_recipe
from s3prl_mi_probe.corpus.recipes.registry import CliOption, Recipe, register_recipe
from s3prl_mi_probe.corpus.textgrid import write_textgrid

# The 24 core test speakers (2 male, 1 female per dialect region DR1..DR8).
CORE_TEST_SPEAKERS = frozenset(
    """
    mdab0 mwbt0 felc0   mtas1 mwew0 fpas0   mjmp0 mlnt0 fpkt0   mlll0 mtls0 fjlm0
    mbpm0 mklt0 fnlp0   mcmj0 mjdh0 fmgd0   mgrt0 mnjm0 fdhc0   mjln0 mpam0 fmld0
""".split()
)
# The 50-speaker development set of the Kaldi TIMIT recipe (conf/dev_spk.list, after
# Halberstadt 1998): TEST speakers outside the core test set. The other 94 TEST speakers are unused.
DEV_SPEAKERS = frozenset(
    """
    faks0 fdac1 fjem0 mgwt0 mjar0 mmdb1 mmdm2 mpdf0 fcmh0 fkms0 mbdg0 mbwm0 mcsh0
    fadg0 fdms0 fedw0 mgjf0 mglb0 mrtk0 mtaa0 mtdt0 mthc0 mwjg0 fnmr0 frew0 fsem0
    mbns0 mmjr0 mdls0 mdlf0 mdvc0 mers0 fmah0 fdrw0 mrcs0 mrjm4 fcal1 mmwh0 fjsj0
    majc0 mjsw0 mreb0 fgjd0 fjmg0 mroa0 mteb0 mjfc0 mrjr0 fmml0 mrws1
""".split()
)
# Lee & Hon (1989) 61 -> 39 folding, as in Kaldi's phones.60-48-39.map: the phones listed here
# change, all others keep their label. Closures and pauses become "sil" (adjacent ones merged);
# the glottal stop q is removed (its interval is left unlabelled).
FOLD_61_TO_39 = {
    "ao": "aa",
    "ax": "ah",
    "ax-h": "ah",
    "axr": "er",
    "hv": "hh",
    "ix": "ih",
    "el": "l",
    "em": "m",
    "en": "n",
    "nx": "n",
    "eng": "ng",
    "zh": "sh",
    "ux": "uw",
    "bcl": "sil",
    "dcl": "sil",
    "gcl": "sil",
    "pcl": "sil",
    "tcl": "sil",
    "kcl": "sil",
    "h#": "sil",
    "pau": "sil",
    "epi": "sil",
    "q": None,
}
FOLDED_SILENCE = "sil"
UTTERANCE_FILE = re.compile(r"^s[ix]\d+\.wav$")  # SI and SX sentences; the dialect sentences SA* are skipped
REQUIRED_SPHERE_FIELDS = ("sample_count", "sample_rate", "sample_n_bytes", "sample_byte_format")
SPHERE_SAMPLE_TYPES = {2: (np.int16, "PCM_16"), 4: (np.int32, "PCM_32")}
SPHERE_BYTE_ORDERS = {"01": "<", "10": ">"}


def prepare_timit(corpus_dir: Path, output_dir: Path, fold_61_to_39: bool = False) -> Path:
    """Write ``output_dir/manifest.tsv``, ``output_dir/wav/`` and ``output_dir/grids/`` for TIMIT.

    Reads ``corpus_dir/TRAIN|TEST/<dialect>/<speaker>/<utt>.WAV`` (NIST SPHERE, any case of names)
    with ``.PHN``/``.WRD`` beside it, skipping the SA sentences. TRAIN goes to train, the 24
    core test speakers to test, the 50 Kaldi dev speakers to dev; other TEST speakers are
    unused. Word intervals that overlap (TIMIT words may share a phone) meet at the overlap's
    middle. ``fold_61_to_39`` folds phones with ``FOLD_61_TO_39``. Missing label files and
    unreadable audio raise one ProblemsFound.
    """
    root, out = Path(corpus_dir), Path(output_dir)
    rows, problems, unused_speakers = [], [], []
    top_folders = {p.name.lower(): p for p in root.iterdir() if p.is_dir()} if root.is_dir() else {}
    for name in ("train", "test"):
        if name not in top_folders:
            problems.append(Problem(root, f"no {name.upper()} folder"))
            continue
        for speaker_folder in sorted(p for p in top_folders[name].glob("*/*") if p.is_dir()):
            speaker = speaker_folder.name.lower()
            split = "train" if name == "train" else _test_split(speaker)
            if split is None:
                unused_speakers.append(speaker)
                continue
            files = {p.name.lower(): p for p in speaker_folder.iterdir()}
            for file_name in sorted(filter(UTTERANCE_FILE.match, files)):
                utterance_id = f"{speaker}_{file_name.removesuffix('.wav')}"
                try:
                    audio, alignment = _convert_utterance(files, file_name, utterance_id, out, fold_61_to_39)
                except ProblemsFound as error:
                    problems += error.problems
                    continue
                rows.append(ManifestRow(utterance_id, audio, alignment, split, speaker))
    notes = [f"{len(unused_speakers)} TEST speaker(s) outside the core test and dev sets, not used"]
    return finish_recipe(root, out, rows, problems, notes)


def _test_split(speaker: str) -> str | None:
    if speaker in CORE_TEST_SPEAKERS:
        return "test"
    return "dev" if speaker in DEV_SPEAKERS else None


def _convert_utterance(
    files: dict[str, Path], file_name: str, utterance_id: str, out: Path, fold_61_to_39: bool
) -> tuple[Path, Path]:
    """Write the WAV and TextGrid of one utterance; return their paths."""
    sphere = files[file_name]
    stem = file_name.removesuffix(".wav")
    missing = [f"{stem}{suffix}" for suffix in (".phn", ".wrd") if f"{stem}{suffix}" not in files]
    if missing:
        raise unusable(sphere, f"no {' or '.join(m.upper() for m in missing)} beside it")
    samples, sample_rate, subtype = read_sphere(sphere)
    phones = _read_label_file(files[f"{stem}.phn"], sample_rate)
    words = _meet_overlaps(_read_label_file(files[f"{stem}.wrd"], sample_rate))
    if fold_61_to_39:
        phones = fold_phones(phones)

    audio = out / "wav" / f"{utterance_id}.wav"
    audio.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate, format="WAV", subtype=subtype)
    write_bytes_atomic(audio, buffer.getvalue())
    alignment = out / "grids" / f"{utterance_id}.TextGrid"
    write_textgrid(alignment, {"words": words, "phones": phones}, len(samples) / sample_rate)
    return audio, alignment


def read_sphere(path: Path) -> tuple[np.ndarray, int, str]:
    """Samples (frames x channels), sample rate and soundfile subtype of an uncompressed NIST SPHERE file.

    The header (``NIST_1A``, its size, then ``name -type value`` lines up to ``end_head``) must give
    sample_count, sample_rate, sample_n_bytes (2 or 4) and sample_byte_format (01 little endian,
    10 big endian); channel_count defaults to 1 and sample_coding to pcm. Shorten-compressed files
    and other codings raise ProblemsFound.
    """
    data = path.read_bytes()
    if not data.startswith(b"NIST_1A"):
        raise unusable(path, "not a NIST SPHERE file (no NIST_1A header)")
    try:
        header_size = int(data[8:16])
    except ValueError:
        raise unusable(path, f"SPHERE header size is not a number ({data[8:16]!r})") from None
    fields = _sphere_fields(data[16:header_size].decode("ascii", errors="replace"))
    missing = [name for name in REQUIRED_SPHERE_FIELDS if name not in fields]
    if missing:
        raise unusable(path, f"SPHERE header lacks {', '.join(missing)}")
    coding = fields.get("sample_coding", "pcm")
    if "shorten" in coding:
        raise unusable(
            path, f"shorten-compressed SPHERE ({coding}) is not supported; decompress it first (sph2pipe -f wav)"
        )
    sample_bytes, byte_format = int(fields["sample_n_bytes"]), fields["sample_byte_format"]
    if coding != "pcm" or sample_bytes not in SPHERE_SAMPLE_TYPES or byte_format not in SPHERE_BYTE_ORDERS:
        raise unusable(
            path,
            f"unsupported SPHERE samples (sample_coding={coding}, sample_n_bytes={sample_bytes}, "
            f"sample_byte_format={byte_format}); supported: pcm, 2 or 4 bytes, byte format 01 or 10",
        )
    sample_type, subtype = SPHERE_SAMPLE_TYPES[sample_bytes]
    channels, frames = int(fields.get("channel_count", 1)), int(fields["sample_count"])
    body = data[header_size : header_size + frames * channels * sample_bytes]
    if len(body) < frames * channels * sample_bytes:
        held = len(body) // (channels * sample_bytes)
        raise unusable(path, f"truncated: header says {frames} samples, file holds {held}")
    stored = np.dtype(sample_type).newbyteorder(SPHERE_BYTE_ORDERS[byte_format])
    samples = np.frombuffer(body, dtype=stored).astype(sample_type).reshape(frames, channels)
    return samples, int(fields["sample_rate"]), subtype


def _sphere_fields(header: str) -> dict[str, str]:
    """``{name: value}`` of the ``name -type value`` lines of a SPHERE header, up to ``end_head``."""
    fields = {}
    for line in header.splitlines():
        parts = line.strip().split(maxsplit=2)
        if parts and parts[0] == "end_head":
            break
        if len(parts) == 3:
            fields[parts[0]] = parts[2].strip()
    return fields


def _read_label_file(path: Path, sample_rate: int) -> list[Interval]:
    """The ``start end label`` lines (sample indices) of a .PHN or .WRD file, in seconds."""
    intervals = []
    for number, line in enumerate(path.read_text(encoding="ascii", errors="replace").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
            reason = f"expected 'start end label' in samples, found {line.strip()!r}"
            raise ProblemsFound(path, [Problem(path, reason, number)])
        start, end = int(parts[0]), int(parts[1])
        if end > start:
            intervals.append((start / sample_rate, end / sample_rate, parts[2]))
    return intervals


def _meet_overlaps(words: list[Interval]) -> list[Interval]:
    """Move the boundary of each pair of overlapping neighbours to the middle of their overlap."""
    words = [list(word) for word in sorted(words)]
    for previous, following in zip(words, words[1:]):
        if following[0] < previous[1]:
            previous[1] = following[0] = (following[0] + previous[1]) / 2
    return [tuple(word) for word in words]


def fold_phones(phones: list[Interval]) -> list[Interval]:
    """Apply ``FOLD_61_TO_39``: drop q, relabel, and merge touching "sil" intervals."""
    folded: list[Interval] = []
    for start, end, label in phones:
        label = FOLD_61_TO_39.get(label, label)
        if label is None:
            continue
        if label == FOLDED_SILENCE and folded and folded[-1][2] == FOLDED_SILENCE and folded[-1][1] == start:
            start = folded.pop()[0]
        folded.append((start, end, label))
    return folded


register_recipe(
    Recipe(
        name="timit",
        help="TIMIT (NIST SPHERE, .PHN, .WRD): converted to WAV and TextGrids",
        prepare=prepare_timit,
        options={
            "corpus_dir": CliOption("folder holding TRAIN and TEST", flag="--root"),
            "fold_61_to_39": CliOption("fold the 61 phones to the standard 39", flag="--fold-39"),
        },
    )
)
