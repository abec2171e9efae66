"""The corpus recipes by name: each recipe module registers its ``prepare_<corpus>`` function with its
command-line name, help and options, and ``s3prl-mi-probe prepare <corpus>`` is built from here.

Every ``prepare_<corpus>(corpus_dir, output_dir, ...)`` takes the downloaded corpus's folder and the
folder for ``manifest.tsv`` first (lhotse's convention), then its own typed arguments; an argument
without a default is a required option. Option types come from the annotations: ``Path``, ``str``,
``int``, ``float``, ``list[str]`` (comma-separated) and ``bool`` (a switch).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CORPUS_DIR, OUTPUT_DIR = "corpus_dir", "output_dir"


@dataclass(frozen=True)
class CliOption:
    """How one argument of a prepare function shows on the command line: ``--<name>`` unless ``flag``."""

    help: str
    flag: str | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RecipeArgument:
    """One argument of a prepare function with its option (``default`` is None where ``required``)."""

    name: str
    flag: str
    help: str
    type: object
    required: bool
    default: object
    choices: tuple[str, ...] | None


@dataclass(frozen=True)
class Recipe:
    """A corpus recipe: its command name, one-line help, prepare function and the options of its arguments
    (``corpus_dir`` needs one: its flag names the folder the corpus's users know, e.g. ``--root``)."""

    name: str
    help: str
    prepare: Callable[..., Path]
    options: dict[str, CliOption] = field(default_factory=dict)

    def arguments(self) -> list[RecipeArgument]:
        """The arguments of ``prepare`` but ``output_dir``, in its order, each with its option."""
        hints = typing.get_type_hints(self.prepare)
        parameters = [p for p in inspect.signature(self.prepare).parameters.values() if p.name != OUTPUT_DIR]
        undeclared = [p.name for p in parameters if p.name not in self.options]
        if undeclared:
            raise TypeError(f"recipe {self.name!r}: no command-line option for argument(s) {', '.join(undeclared)}")
        return [
            RecipeArgument(
                name=p.name,
                flag=self.options[p.name].flag or f"--{p.name.replace('_', '-')}",
                help=self.options[p.name].help,
                type=hints[p.name],
                required=p.default is inspect.Parameter.empty,
                default=None if p.default is inspect.Parameter.empty else p.default,
                choices=self.options[p.name].choices,
            )
            for p in parameters
        ]


RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    """Make ``recipe`` a ``prepare`` subcommand; its function must take ``(corpus_dir, output_dir, ...)``."""
    first = list(inspect.signature(recipe.prepare).parameters)[:2]
    if first != [CORPUS_DIR, OUTPUT_DIR]:
        raise TypeError(f"recipe {recipe.name!r}: prepare takes {first}, expected [{CORPUS_DIR}, {OUTPUT_DIR}, ...]")
    RECIPES[recipe.name] = recipe
    return recipe


def all_recipes() -> dict[str, Recipe]:
    """Every recipe of this package by name, in name order (each module registers its own on import)."""
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{__package__}.{module.name}")
    return dict(sorted(RECIPES.items()))
