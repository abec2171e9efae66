"""Check: this project on ESPnet's maintained fork of s3prl (the distribution ``espnet-s3prl``).

``make check-s3prl-fork`` (not part of ``make test``: it installs from PyPI and takes minutes):

1. builds a separate virtual environment (``--venv``, default ``.venv-s3prl-fork``, recreated) with
   the pinned torch/torchaudio and ``pip install -e '.[espnet]'``;
2. reruns this script inside it (``--inside``), which checks, each step timed:
   - only ``espnet-s3prl`` provides the ``s3prl`` package (s3prl 0.4.18 was not installed over it);
   - ``s3prl-mi-probe doctor`` exits 0, names the distribution, and leaves off the shims the fork
     does not need (``set_audio_backend``, which it no longer calls);
   - a ``-d mi_probe`` smoke run, ``python -m s3prl.run_downstream -m train -u fbank`` on a tone
     corpus, then ``-m evaluate`` of its best checkpoint;
   - a ``sweep`` of fbank and a tiny random HuBERT (``hubert_local``) on the same corpus.

Prints one line per step (seconds, pass/FAIL, and the end of the output of a failed step); exits 1 when
a step failed. Usage: ``python bench/check_s3prl_fork.py [--venv DIR] [--work DIR]``.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.support: the tone corpus and the runner launcher the tests use too
# As the Makefile's TORCH_PINS: resolved from this machine's wheels, so pip does not pick another torch.
TORCH_PINS = ("torch==2.14.1", "torchaudio==2.11.1")
DISTRIBUTION = "espnet-s3prl"


def build_venv(venv):
    """A fresh virtual environment with torch and this project installed with ``[espnet]``."""
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *TORCH_PINS], check=True)
    subprocess.run([*pip, "-e", f"{REPO}[espnet]", *TORCH_PINS], check=True)


class Steps:
    """Runs named steps, timing each; a failed step is recorded with the end of its output."""

    def __init__(self):
        self.results = []

    def run(self, name, check):
        start = time.perf_counter()
        try:
            detail = check() or ""
            passed = True
        except (AssertionError, subprocess.CalledProcessError, OSError, ValueError) as error:
            detail, passed = str(error)[-3000:], False
        seconds = time.perf_counter() - start
        self.results.append((name, seconds, passed))
        print(f"{'pass' if passed else 'FAIL'} {seconds:7.1f} s  {name}{': ' + detail if detail else ''}", flush=True)
        return passed


def _completed(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-3000:]
        raise AssertionError(f"exit {result.returncode}: {' '.join(command)}\n{output}")
    return result


def check_inside(work):
    """The checks, run by the fork environment's Python; returns the Steps."""
    from s3prl_mi_probe.toolkit.distribution import s3prl_distributions
    from tests.support.launch import run_downstream, short_run_overrides
    from tests.support.tones import write_tone_corpus

    steps = Steps()

    def only_the_fork():
        provided = s3prl_distributions()
        assert list(provided) == [DISTRIBUTION], f"s3prl is provided by {provided}"
        return f"{DISTRIBUTION} {provided[DISTRIBUTION]}"

    def doctor():
        output = _completed([sys.executable, "-m", "s3prl_mi_probe", "doctor"]).stdout
        assert f"s3prl: {DISTRIBUTION} " in output, output
        # The fork no longer calls torchaudio.set_audio_backend (0.4.18 does): no shim for it here.
        assert "[off] torchaudio.set_audio_backend: not needed: the installed s3prl does not use it" in output, output
        return " | ".join(line.strip() for line in output.splitlines() if "[active]" in line or "[off]" in line)

    manifest = write_tone_corpus(work / "tones", num_utterances=24)
    expdir = work / "smoke"

    def smoke_train():
        result = run_downstream(
            "-m", "train", "-u", "fbank", "-d", "mi_probe", "-p", str(expdir), "-o",
            short_run_overrides(manifest, steps=60), timeout=1800,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        rows = [json.loads(line) for line in (expdir / "metrics.jsonl").read_text().splitlines()]
        assert {(row["step"], row["split"]) for row in rows} == {(s, p) for s in (30, 60) for p in ("dev", "test")}
        test = [row for row in rows if row["split"] == "test" and row["step"] == 60][0]
        return f"test mi_bits {test['mi_bits']:.3f} of H(Y) {test['h_y_bits']:.3f}, accuracy {test['accuracy']:.3f}"

    def smoke_evaluate():
        result = run_downstream(
            "-m", "evaluate", "-e", str(expdir / "best-states-dev.ckpt"), task=None, timeout=1800
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        [row] = json.loads((expdir / "evaluate-test.json").read_text())["rows"]
        assert row["step"] == 60 and row["split"] == "test", row
        return f"evaluate-test.json: step {row['step']}, test mi_bits {row['mi_bits']:.3f}"

    def sweep():
        from s3prl_mi_probe.demo.random_upstreams import write_random_hubert

        hubert = write_random_hubert(work / "tiny_hubert.pt")
        out = work / "sweep"
        command = [sys.executable, "-m", "s3prl_mi_probe", "sweep", "--upstream", "fbank"]
        command += ["--upstream", f"hubert_local={hubert}", "--manifest", str(manifest), "--task", "phone"]
        _completed([*command, "--min-count", "2", "--out", str(out)], timeout=1800)
        result = json.loads((out / "sweep.json").read_text())
        layers = {(row["upstream"], row["layer"]) for row in result["rows"] if row["split"] == "test"}
        assert {label for label, _ in layers} == {"fbank", "hubert_local:tiny_hubert"}, layers
        assert DISTRIBUTION in result["provenance"]["versions"], result["provenance"]["versions"]
        return f"{len(layers)} upstream layers on test"

    steps.run(f"only {DISTRIBUTION} provides s3prl", only_the_fork)
    steps.run("s3prl-mi-probe doctor", doctor)
    if steps.run("run_downstream -m train -u fbank -d mi_probe (60 steps)", smoke_train):
        steps.run("run_downstream -m evaluate -e best-states-dev.ckpt", smoke_evaluate)
    steps.run("sweep --upstream fbank --upstream hubert_local=tiny_hubert.pt", sweep)
    return steps


def main():
    """Build the fork's environment and run the checks in it (or, with --inside, run them here)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=REPO / ".venv-s3prl-fork")
    parser.add_argument("--work", type=Path, help="folder for the corpus and the runs (default: a temporary one)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.venv = args.venv.resolve()
    if args.inside:
        steps = check_inside(args.work)
        return 0 if all(passed for _, _, passed in steps.results) else 1
    start = time.perf_counter()
    build_venv(args.venv)
    print(f"pass {time.perf_counter() - start:7.1f} s  built {args.venv} with {' '.join(TORCH_PINS)} and .[espnet]")
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        script = [str(args.venv / "bin" / "python"), __file__, "--inside", "--work", str(work)]
        code = subprocess.run(script, cwd=work).returncode
    print(f"{'passed' if code == 0 else 'FAILED'}: {time.perf_counter() - start:.1f} s in all")
    return code


if __name__ == "__main__":
    sys.exit(main())
