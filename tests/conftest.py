"""Shared test inputs, built once per session: real WAV/TextGrid corpora and a tiny random HuBERT."""

import contextlib
import io
import os
import subprocess
import sys

import pytest

from tests.support.tones import write_tone_corpus


@pytest.fixture(scope="session")
def tone_manifest(tmp_path_factory):
    """A learnable corpus: each phone a tone complex, words fixed phone sequences."""
    return write_tone_corpus(tmp_path_factory.mktemp("tones"), num_utterances=24)


@pytest.fixture(scope="session")
def shuffled_manifest(tmp_path_factory):
    """The same kind of corpus with labels permuted across segments: no information in the audio."""
    return write_tone_corpus(tmp_path_factory.mktemp("shuffled"), num_utterances=40, shuffle_labels=True, seed=1)


@pytest.fixture(scope="session")
def tiny_hubert(tmp_path_factory):
    """A 2-layer, 32-dim random HuBERT in s3prl's converted checkpoint format (3 hidden states)."""
    from s3prl_mi_probe.demo.random_upstreams import write_random_hubert

    return write_random_hubert(tmp_path_factory.mktemp("upstreams") / "tiny_hubert.pt")


@pytest.fixture(scope="session")
def torchrun_cli():
    """Runs ``s3prl-mi-probe ARGS`` under ``torchrun --standalone --nproc_per_node=2`` (gloo on the CPU)."""

    def run(*args, timeout=900):
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        return subprocess.run(
            [*command, "-m", "s3prl_mi_probe", *args], capture_output=True, text=True, timeout=timeout
        )

    return run


@pytest.fixture(scope="session")
def cli_in_process():
    """Runs ``s3prl-mi-probe ARGS`` through :func:`s3prl_mi_probe.cli.main` in this process, ended as ``sys.exit``
    would end it: a :class:`subprocess.CompletedProcess` with the exit code and what the command wrote to stdout
    and stderr. For the many checks of what a command says; subprocess tests keep one per failure class.
    """
    return run_command_in_process


def run_command_in_process(*args):
    """See :func:`cli_in_process`."""
    from s3prl_mi_probe.cli import main

    stdout, stderr, environment = io.StringIO(), io.StringIO(), dict(os.environ)
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = main([str(arg) for arg in args])
        except SystemExit as exit_:
            status = exit_.code
        finally:
            os.environ.clear()
            os.environ.update(environment)  # main sets the OpenMP wait policy for the processes it starts
    if isinstance(status, str):  # sys.exit(message): the message on stderr, exit code 1
        stderr.write(f"{status}\n")
        status = 1
    return subprocess.CompletedProcess(args, status or 0, stdout.getvalue(), stderr.getvalue())
