"""Any audio folder with a parallel TextGrid folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from s3prl_mi_probe.common.problems import Problem, ProblemsFound
from s3prl_mi_probe.corpus.manifest import ManifestRow
from s3prl_mi_probe.corpus.reader import read_audio_info, read_tiers
from s3prl_mi_probe.corpus.recipes.common import OUR_TIERS, convert_textgrid, finish_recipe, skipped_note
from s3prl_mi_probe.corpus.recipes.registry import CliOption, Recipe, register_recipe
from s3prl_mi_probe.corpus.splits import assign_splits

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")

SPLIT_BY = ("speaker", "random")


def prepare_textgrids(
    corpus_dir: Path,
    output_dir: Path,
    alignments: Path,
    split_by: str = "speaker",
    word_tier: str = "words",
    phone_tier: str = "phones",
    seed: int = 0,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> Path:
    """Pair audio files (.wav, .flac, .ogg, .mp3) below ``corpus_dir`` with TextGrids below ``alignments``.

    Files pair by relative path without suffix (``spk1/a.wav`` with ``spk1/a.TextGrid``); the id
    is that path with ``/`` replaced by ``_``. With ``split_by="speaker"`` the speaker is the first
    folder below ``corpus_dir`` and whole speakers go to dev and test; with ``"random"`` utterances are
    split and no speaker is written. Tiers named otherwise than ``words``/``phones`` are copied
    under those names to ``output_dir/grids/``. Audio without a TextGrid is skipped and listed; a TextGrid
    without audio, unreadable audio or TextGrids and missing tiers raise one ProblemsFound.
    """
    if split_by not in SPLIT_BY:
        raise ValueError(f"split_by must be one of {', '.join(SPLIT_BY)}, got {split_by!r}")
    audio, alignments, out = Path(corpus_dir), Path(alignments), Path(output_dir)
    problems = [Problem(folder, "folder not found") for folder in (audio, alignments) if not folder.is_dir()]
    if problems:
        raise ProblemsFound(audio, problems)
    audio_files = _files_by_stem(audio, AUDIO_SUFFIXES)
    grid_files = _files_by_stem(alignments, (".textgrid",))
    problems += [
        Problem(grid, f"TextGrid without audio under {audio}")
        for key, grid in grid_files.items()
        if key not in audio_files
    ]
    convert = (word_tier, phone_tier) != OUR_TIERS
    pairs = []
    for key, audio_file in audio_files.items():
        if key not in grid_files:
            continue
        if split_by == "speaker" and "/" not in key:
            problems.append(
                Problem(audio_file, f"lies directly in {audio}; split_by='speaker' needs one folder per speaker")
            )
            continue
        alignment = out / "grids" / f"{key}.TextGrid" if convert else grid_files[key]
        try:
            read_audio_info(audio_file)
            if convert:
                convert_textgrid(grid_files[key], alignment, {"words": word_tier, "phones": phone_tier})
            else:
                read_tiers(alignment, list(OUR_TIERS))
        except ProblemsFound as error:
            problems += error.problems
            continue
        pairs.append((key, audio_file, alignment))

    speakers = [key.split("/")[0] if split_by == "speaker" else None for key, _, _ in pairs]
    split_keys = [speaker or key for speaker, (key, _, _) in zip(speakers, pairs)]
    try:
        split_of = assign_splits(sorted(set(split_keys)), dev_fraction, test_fraction, np.random.default_rng(seed))
    except ValueError as error:
        raise ProblemsFound(audio, [*problems, Problem(audio, str(error))]) from None
    rows = [
        ManifestRow(key.replace("/", "_"), audio_file, alignment, split_of[split_key], speaker)
        for (key, audio_file, alignment), speaker, split_key in zip(pairs, speakers, split_keys)
    ]
    unaligned = [key for key in audio_files if key not in grid_files]
    notes = [skipped_note("audio file(s) without a TextGrid, skipped", unaligned)] if unaligned else []
    return finish_recipe(audio, out, rows, problems, notes)


def _files_by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Files below ``folder`` with one of ``suffixes`` (any case), keyed by relative path without suffix."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
    return {p.relative_to(folder).with_suffix("").as_posix(): p for p in files}


register_recipe(
    Recipe(
        name="textgrids",
        help="any audio folder with a parallel TextGrid folder",
        prepare=prepare_textgrids,
        options={
            "corpus_dir": CliOption("audio files, one folder per speaker", flag="--audio"),
            "alignments": CliOption("TextGrids laid out like the audio"),
            "split_by": CliOption(
                "speaker: whole speakers (first folder below --audio) per split; random: utterances", choices=SPLIT_BY
            ),
            "word_tier": CliOption("the TextGrid tier of words"),
            "phone_tier": CliOption("the TextGrid tier of phones"),
            "seed": CliOption("seeds the split"),
            "dev_fraction": CliOption("share of speakers (or utterances) in dev"),
            "test_fraction": CliOption("share of speakers (or utterances) in test"),
        },
    )
)
