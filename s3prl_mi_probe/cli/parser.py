"""The argument parser of every subcommand: one-line usage errors and defaults shown in ``--help``.

Exit codes: 2 when the command line is wrong on its face (an unknown flag, a malformed value, a
named file or folder that does not exist), 1 when the work finds a problem (the corpus, an upstream,
the device), 130 after Ctrl-C. Every message is one line: ``s3prl-mi-probe <command>: <what is
wrong>; <what to do>``.
"""

import argparse


class UsageError(Exception):
    """A command line wrong on its face that only shows once its values are read together (exit 2)."""


class HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to an option's help, unless the help says it already or there is none to show."""

    def _get_help_string(self, action):
        text = action.help or ""
        nothing_to_show = any(action.default is value for value in (None, False, argparse.SUPPRESS))
        if not action.option_strings or "default" in text or nothing_to_show:
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser (and its subcommands' parsers) with :class:`HelpFormatter` and one-line errors."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        """Exit 2 with ``<prog>: <message>; see <prog> --help`` on one line."""
        self.exit(2, usage_message(self.prog, message))


def usage_message(prog, message):
    """The one line of a usage error: ``<prog>: <message>; see <prog> --help``."""
    return f"{prog}: {message}; see {prog} --help\n"
