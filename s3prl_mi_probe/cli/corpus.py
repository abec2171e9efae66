"""The corpus subcommands: ``prepare <corpus>``, ``stats`` and ``validate``.

Each handler takes the parsed arguments and returns 0, or an error message (a ProblemsFound's
text) for ``sys.exit``. Modules are imported in the handlers, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from s3prl_mi_probe.cli.options import (
    add_task_filter_options,
    comma_list,
    existing_file,
    output_folder,
    task_options,
)
from s3prl_mi_probe.common.problems import ProblemsFound
from s3prl_mi_probe.corpus.task import TIER_OF_TASK, TaskOptions

LIBRISPEECH_SPLITS = "train-clean-100,dev-clean,test-clean"


def register_corpus_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``prepare``, ``stats`` and ``validate`` to the subcommands of a parser."""
    prepare = commands.add_parser("prepare", help="write a manifest (and TextGrids) for a downloaded corpus")
    corpora = prepare.add_subparsers(dest="corpus", required=True)

    librispeech = corpora.add_parser("librispeech", help="LibriSpeech FLAC with MFA TextGrids")
    librispeech.add_argument("--root", type=Path, required=True, help="folder of train-clean-100, dev-clean, ...")
    librispeech.add_argument("--alignments", type=Path, required=True, help="MFA TextGrids laid out like the audio")
    librispeech.add_argument(
        "--splits",
        type=comma_list,
        default=comma_list(LIBRISPEECH_SPLITS),
        help=f"comma-separated (default: {LIBRISPEECH_SPLITS})",
    )
    librispeech.add_argument(
        "--out", type=output_folder, required=True, help="folder for manifest.tsv (and converted files)"
    )
    librispeech.set_defaults(handler=_prepare_librispeech)

    commonphone = corpora.add_parser("commonphone", help="CommonPhone 1.0 (MAUS tiers MAU, ORT-MAU)")
    commonphone.add_argument("--root", type=Path, required=True, help="folder of the language folders (en, de, ...)")
    commonphone.add_argument("--languages", type=comma_list, required=True, help="comma-separated, e.g. en,de")
    commonphone.add_argument(
        "--out", type=output_folder, required=True, help="folder for manifest.tsv (and converted files)"
    )
    commonphone.set_defaults(handler=_prepare_commonphone)

    timit = corpora.add_parser("timit", help="TIMIT (NIST SPHERE, .PHN, .WRD): converted to WAV and TextGrids")
    timit.add_argument("--root", type=Path, required=True, help="folder holding TRAIN and TEST")
    timit.add_argument("--out", type=output_folder, required=True, help="folder for manifest.tsv (and converted files)")
    timit.add_argument("--fold-39", action="store_true", help="fold the 61 phones to the standard 39")
    timit.set_defaults(handler=_prepare_timit)

    textgrids = corpora.add_parser("textgrids", help="any audio folder with a parallel TextGrid folder")
    textgrids.add_argument("--audio", type=Path, required=True, help="audio files, one folder per speaker")
    textgrids.add_argument("--alignments", type=Path, required=True, help="TextGrids laid out like the audio")
    textgrids.add_argument(
        "--out", type=output_folder, required=True, help="folder for manifest.tsv (and converted files)"
    )
    textgrids.add_argument(
        "--split-by",
        choices=["speaker", "random"],
        default="speaker",
        help="speaker: whole speakers (first folder below --audio) per split; random: utterances",
    )
    textgrids.add_argument("--word-tier", default="words", help="the TextGrid tier of words")
    textgrids.add_argument("--phone-tier", default="phones", help="the TextGrid tier of phones")
    textgrids.add_argument("--seed", type=int, default=0, help="seeds the split")
    textgrids.add_argument("--dev-fraction", type=float, default=0.1, help="share of speakers (or utterances) in dev")
    textgrids.add_argument("--test-fraction", type=float, default=0.1, help="share of speakers (or utterances) in test")
    textgrids.set_defaults(handler=_prepare_textgrids)

    libriphone = corpora.add_parser(
        "libriphone", help="s3prl's phone_linear frame labels of train-clean-100 (for the frame_phone task)"
    )
    libriphone.add_argument(
        "--phone-path",
        type=Path,
        required=True,
        help="folder of converted_aligned_phones.txt, train_split.txt, test_split.txt",
    )
    libriphone.add_argument("--libri-root", type=Path, required=True, help="LibriSpeech folder holding train-clean-100")
    libriphone.add_argument("--out", type=output_folder, required=True)
    libriphone.set_defaults(handler=_prepare_libriphone)

    stats = commands.add_parser("stats", help="class counts, segment durations and what the filters drop")
    stats.add_argument("manifest", type=existing_file, metavar="MANIFEST")
    stats.add_argument(
        "--task", choices=list(TIER_OF_TASK), default=TaskOptions().task, help="phone: tier 'phones'; word: 'words'"
    )
    stats.add_argument("--out", type=output_folder, help="also write OUT/stats.md and OUT/stats.png")
    add_task_filter_options(stats)
    stats.set_defaults(handler=_stats)

    validate = commands.add_parser("validate", help="check a manifest and its files for both tasks")
    validate.add_argument("manifest", type=existing_file, metavar="MANIFEST")
    validate.set_defaults(handler=_validate)


def _run(command: str, action: Callable[[], str]) -> int | str:
    """Print what ``action`` returns, or return its ProblemsFound as the command's error message."""
    try:
        print(action())
    except ProblemsFound as error:
        return f"s3prl-mi-probe {command}: {error}"
    return 0


def _prepare(corpus: str, recipe: Callable[..., Path], *arguments, **keywords) -> int | str:
    return _run(f"prepare {corpus}", lambda: f"wrote {recipe(*arguments, **keywords)}")


def _prepare_librispeech(args: argparse.Namespace) -> int | str:
    from s3prl_mi_probe.corpus.recipes.librispeech import prepare_librispeech

    return _prepare("librispeech", prepare_librispeech, args.root, args.alignments, args.splits, args.out)


def _prepare_commonphone(args: argparse.Namespace) -> int | str:
    from s3prl_mi_probe.corpus.recipes.commonphone import prepare_commonphone

    return _prepare("commonphone", prepare_commonphone, args.root, args.languages, args.out)


def _prepare_timit(args: argparse.Namespace) -> int | str:
    from s3prl_mi_probe.corpus.recipes.timit import prepare_timit

    return _prepare("timit", prepare_timit, args.root, args.out, fold_61_to_39=args.fold_39)


def _prepare_libriphone(args: argparse.Namespace) -> int | str:
    from s3prl_mi_probe.corpus.recipes.libriphone import prepare_libriphone

    return _prepare("libriphone", prepare_libriphone, args.phone_path, args.libri_root, args.out)


def _prepare_textgrids(args: argparse.Namespace) -> int | str:
    from s3prl_mi_probe.corpus.recipes.textgrids import prepare_textgrids

    return _prepare(
        "textgrids",
        prepare_textgrids,
        args.audio,
        args.alignments,
        args.out,
        split_by=args.split_by,
        word_tier=args.word_tier,
        phone_tier=args.phone_tier,
        seed=args.seed,
        dev_fraction=args.dev_fraction,
        test_fraction=args.test_fraction,
    )


def _stats(args: argparse.Namespace) -> int | str:
    from s3prl_mi_probe.corpus.stats import manifest_stats

    options = task_options(args)
    written = f"\nwrote {args.out / 'stats.md'} and {args.out / 'stats.png'}" if args.out else ""
    return _run("stats", lambda: manifest_stats(args.manifest, options, args.out) + written)


def _validate(args: argparse.Namespace) -> int | str:
    from s3prl_mi_probe.corpus.validate import validate_manifest

    return _run("validate", lambda: validate_manifest(args.manifest))
