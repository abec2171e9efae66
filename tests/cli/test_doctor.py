"""Which s3prl this project runs with: ``doctor``, the install hint without s3prl, shims only where s3prl needs them."""

import subprocess
import sys
from importlib import metadata

from s3prl_mi_probe.common.provenance import package_versions
from s3prl_mi_probe.toolkit import compat
from s3prl_mi_probe.toolkit.distribution import s3prl_distributions


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def test_doctor_names_the_distribution_versions_shims_and_devices():
    result = subprocess.run(
        [sys.executable, "-m", "s3prl_mi_probe", "doctor"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("s3prl: s3prl 0.4.18 (") and lines[0].endswith("/s3prl)")
    assert lines[1] == f"torch: {metadata.version('torch')}; torchaudio: {metadata.version('torchaudio')}"
    shims = {line.split("] ")[1].split(":")[0]: line for line in lines if line.startswith("  [")}
    assert set(shims) == {shim.name for shim in compat.SHIMS}
    # torchaudio 2.11 lacks set_audio_backend and s3prl 0.4.18 calls it, in run_downstream.py among others.
    assert shims["torchaudio.set_audio_backend"].startswith("  [active]") and "run_downstream.py" in result.stdout
    # huggingface_hub < 1 still has HfFolder: nothing to add.
    assert shims["huggingface_hub.HfFolder"] == "  [off] huggingface_hub.HfFolder: not needed: this environment has it"
    assert lines[-1].startswith("devices: cpu")


def test_a_command_that_runs_upstreams_without_s3prl_says_how_to_install_it(tmp_path):
    """With s3prl unimportable (its import blocked), sweep stops in one line naming both extras, exit 1."""
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("")  # the parser wants a file; the missing s3prl is found before it is read
    result = run_python(
        "import sys\n"
        "sys.modules['s3prl'] = None\n"
        "from s3prl_mi_probe.cli import main\n"
        f"sys.exit(main(['sweep', '--upstream', 'fbank', '--manifest', {str(manifest)!r}, '--task', 'phone', "
        f"'--out', {str(tmp_path / 'out')!r}]))\n"
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "s3prl-mi-probe sweep: s3prl is not installed; install it with pip install 's3prl-mi-probe[s3prl]' "
        "(s3prl 0.4.18 from PyPI) or pip install 's3prl-mi-probe[espnet]' (ESPnet's maintained fork, espnet-s3prl)"
    ]
    assert not (tmp_path / "out").exists()


def test_a_shim_stays_off_where_the_installed_s3prl_does_not_meet_the_breakage():
    shim = compat.Shim(
        "torchaudio.gone",
        "a breakage s3prl never meets",
        r"\btorchaudio\.gone\(",
        ("run_downstream.py", "upstream/*/audio.py"),
        missing=lambda: True,
        install=lambda: None,
    )
    assert shim.s3prl_uses() == [] and not shim.needed()
    set_audio_backend = next(shim for shim in compat.SHIMS if shim.name == "torchaudio.set_audio_backend")
    assert {"run_downstream.py", "util/audio_info.py", "upstream/apc/audio.py"} <= set(set_audio_backend.s3prl_uses())


def test_provenance_records_the_distribution_that_provides_s3prl():
    assert s3prl_distributions() == {"s3prl": "0.4.18"}
    assert package_versions()["s3prl"] == "0.4.18"
