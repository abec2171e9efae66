"""The corpus subcommands: ``prepare <corpus>`` (one per recipe of ``corpus/recipes``), ``stats`` and ``validate``.

Each handler takes the parsed arguments and returns 0, or an error message (a ProblemsFound's
text) for ``sys.exit``. Modules are imported in the handlers, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from pathlib import Path

from s3prl_mi_probe.cli.options import (
    add_task_filter_options,
    comma_list,
    existing_file,
    output_folder,
    task_options,
)
from s3prl_mi_probe.common.problems import ProblemsFound
from s3prl_mi_probe.corpus.recipes.registry import OUTPUT_DIR, Recipe, RecipeArgument, all_recipes
from s3prl_mi_probe.corpus.task import TaskOptions
from s3prl_mi_probe.corpus.task_kinds import TASK_KINDS

RECIPE_OPTION_TYPES = {Path: Path, str: str, int: int, float: float, list[str]: comma_list, tuple[str, ...]: comma_list}


def register_corpus_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``prepare <corpus>`` (one per registered recipe), ``stats`` and ``validate`` to the subcommands."""
    prepare = commands.add_parser("prepare", help="write a manifest (and TextGrids) for a downloaded corpus")
    corpora = prepare.add_subparsers(dest="corpus", required=True)
    for recipe in all_recipes().values():
        _add_recipe_command(corpora, recipe)

    stats = commands.add_parser("stats", help="class counts, segment durations and what the filters drop")
    stats.add_argument("manifest", type=existing_file, metavar="MANIFEST")
    stats.add_argument(
        "--task", choices=list(TASK_KINDS), default=TaskOptions().task, help="phone: tier 'phones'; word: 'words'"
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


def _add_recipe_command(corpora: argparse._SubParsersAction, recipe: Recipe) -> None:
    """``prepare <recipe.name>``: ``--out`` and one option per argument of the recipe's function."""
    command = corpora.add_parser(recipe.name, help=recipe.help)
    arguments = recipe.arguments()
    corpus_dir, options = arguments[0], arguments[1:]
    _add_recipe_option(command, corpus_dir)
    command.add_argument(
        "--out",
        dest=OUTPUT_DIR,
        metavar="OUT",
        type=output_folder,
        required=True,
        help="folder for manifest.tsv (and converted files)",
    )
    for option in options:
        _add_recipe_option(command, option)
    command.set_defaults(handler=partial(_prepare, recipe))


def _add_recipe_option(command: argparse.ArgumentParser, argument: RecipeArgument) -> None:
    if argument.type is bool:
        command.add_argument(argument.flag, dest=argument.name, action="store_true", help=argument.help)
        return
    command.add_argument(
        argument.flag,
        dest=argument.name,
        metavar=None if argument.choices else argument.flag.lstrip("-").replace("-", "_").upper(),
        type=None if argument.choices else RECIPE_OPTION_TYPES[argument.type],
        choices=argument.choices,
        required=argument.required,
        default=argument.default,
        help=argument.help,
    )


def _prepare(recipe: Recipe, args: argparse.Namespace) -> int | str:
    keywords = {argument.name: getattr(args, argument.name) for argument in recipe.arguments()}
    return _run(f"prepare {recipe.name}", lambda: f"wrote {recipe.prepare(output_dir=args.output_dir, **keywords)}")


def _stats(args: argparse.Namespace) -> int | str:
    from s3prl_mi_probe.corpus.stats import manifest_stats

    options = task_options(args)
    written = f"\nwrote {args.out / 'stats.md'} and {args.out / 'stats.png'}" if args.out else ""
    return _run("stats", lambda: manifest_stats(args.manifest, options, args.out) + written)


def _validate(args: argparse.Namespace) -> int | str:
    from s3prl_mi_probe.corpus.validate import validate_manifest

    return _run("validate", lambda: validate_manifest(args.manifest))
