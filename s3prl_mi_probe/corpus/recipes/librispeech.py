"""LibriSpeech audio with Montreal Forced Aligner TextGrids."""

from __future__ import annotations

from pathlib import Path

from s3prl_mi_probe.common.problems import Problem, ProblemsFound
from s3prl_mi_probe.corpus.manifest import SPLITS, ManifestRow
from s3prl_mi_probe.corpus.reader import read_audio_info, read_tiers
from s3prl_mi_probe.corpus.recipes.common import OUR_TIERS, finish_recipe, skipped_note
from s3prl_mi_probe.corpus.recipes.registry import CliOption, Recipe, register_recipe

DEFAULT_SPLITS = ("train-clean-100", "dev-clean", "test-clean")


def prepare_librispeech(
    corpus_dir: Path, output_dir: Path, alignments: Path, splits: tuple[str, ...] = DEFAULT_SPLITS
) -> Path:
    """Write ``output_dir/manifest.tsv`` for LibriSpeech ``splits`` (e.g. ``train-clean-100``, ``dev-clean``).

    Audio: ``corpus_dir/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac``; TextGrids from MFA
    laid out the same under ``alignments`` (``<split>/<speaker>/<chapter>/<id>.TextGrid``), whose
    ``words`` and ``phones`` tiers are used as they are. ``train-*`` goes to train, ``dev-*`` to dev,
    ``test-*`` to test; the speaker is the ``<speaker>`` folder. Utterances without a TextGrid (MFA
    skips some) are skipped and listed; a missing split folder, a split without FLAC files,
    unreadable audio or TextGrids and missing tiers raise one ProblemsFound.
    """
    root, alignments, out = Path(corpus_dir), Path(alignments), Path(output_dir)
    rows, problems, unaligned = [], [], []
    for split in splits:
        our_split = split.split("-")[0]
        if our_split not in SPLITS:
            problems.append(Problem(None, f"{split}: not a LibriSpeech split name (expected train-*, dev-* or test-*)"))
            continue
        missing = [folder for folder in (root / split, alignments / split) if not folder.is_dir()]
        problems += [Problem(folder, "folder not found") for folder in missing]
        flac_files = sorted((root / split).glob("*/*/*.flac"))
        if not missing and not flac_files:
            problems.append(Problem(root / split, "no <speaker>/<chapter>/*.flac files"))
        for flac in flac_files:
            speaker, chapter = flac.parent.parent.name, flac.parent.name
            grid = alignments / split / speaker / chapter / f"{flac.stem}.TextGrid"
            if not grid.is_file():
                unaligned.append(flac.stem)
                continue
            try:
                read_audio_info(flac)
                read_tiers(grid, list(OUR_TIERS))
            except ProblemsFound as error:
                problems += error.problems
                continue
            rows.append(ManifestRow(flac.stem, flac, grid, our_split, speaker))
    notes = [skipped_note("utterance(s) without a TextGrid, skipped", unaligned)] if unaligned else []
    return finish_recipe(root, out, rows, problems, notes)


register_recipe(
    Recipe(
        name="librispeech",
        help="LibriSpeech FLAC with MFA TextGrids",
        prepare=prepare_librispeech,
        options={
            "corpus_dir": CliOption("folder of train-clean-100, dev-clean, ...", flag="--root"),
            "alignments": CliOption("MFA TextGrids laid out like the audio"),
            "splits": CliOption(f"comma-separated (default: {','.join(DEFAULT_SPLITS)})"),
        },
    )
)
