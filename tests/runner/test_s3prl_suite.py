"""s3prl 0.4.18's own test suite, offline part, against the installed s3prl with our hook active.

Left out are the tests that need the network (test_download, test_g2p, test_upstream), an optional
package that is not a dependency here (flashlight: test_beam_decoder; python-dotenv: the corpus
tests; librosa: test_load_audio, test_frame_label; editdistance: test_metric). test_sox runs too:
sox effects cannot be provided, so it must fail, and only with the compatibility layer's message.
"""

import re
import subprocess
import sys
import tarfile
from pathlib import Path

OFFLINE_TESTS = [
    "test_audio_info.py",  # get_audio_info: torchaudio.info in joblib worker processes
    "test_balanced_weighted_sampler.py",
    "test_linear.py",
    "test_pooling.py",
    "test_rnn.py",
    "test_sampler.py",
    "test_sorted_sampler.py",
    "test_specaug_model.py",
    "test_tokenizer.py",
    "test_version.py",
]

# s3prl's git tree has a test/conftest.py that its sdist leaves out; test_linear and test_rnn
# request its ``helpers`` fixture without using it.
CONFTEST = '''import pytest


@pytest.fixture
def helpers():
    """Requested by test_linear.py and test_rnn.py, which use nothing of it."""
    return None
'''


def extract_tests(destination):
    """The ``test/`` folder of s3prl's sdist (not its sources: the installed s3prl must be the one tested)."""
    sdist = Path(sys.prefix) / "s3prl-sdist" / "s3prl-0.4.18.tar.gz"
    assert sdist.is_file(), "make install downloads s3prl's sdist into .venv/s3prl-sdist"
    with tarfile.open(sdist) as archive:
        members = [member for member in archive.getmembers() if member.name.startswith("s3prl-0.4.18/test/")]
        archive.extractall(destination, members=members, filter="data")
    tests = destination / "s3prl-0.4.18" / "test"
    (tests / "conftest.py").write_text(CONFTEST)
    return tests


def test_s3prl_offline_suite_passes_and_sox_fails_with_our_message(tmp_path):
    tests = extract_tests(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", *OFFLINE_TESTS, "test_sox.py"],
        cwd=tests,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},  # s3prl caches under ~/.cache
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"=* ?1 failed, 26 passed.*", summary), result.stdout[-6000:]
    [failure] = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert failure.startswith("FAILED test_sox.py::test_sox_effect - RuntimeError"), failure
    [error] = [line for line in result.stdout.splitlines() if line.startswith("E   ")]
    assert re.fullmatch(r"E +RuntimeError: torchaudio\.sox_effects was removed in torchaudio 2\.9 .*", error), error
