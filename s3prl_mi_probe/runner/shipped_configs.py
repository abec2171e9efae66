"""The runner configs shipped for ``-d mi_probe``: ``configs/mi_probe_<task>.yaml`` (``downstream_configs/``)."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def config_path(task_name):
    """Installed path of the runner config of a task (``phone``, ``word`` or ``frame_phone``)."""
    return CONFIG_DIR / f"mi_probe_{task_name}.yaml"
