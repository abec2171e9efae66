"""s3prl's own pretraining script, ``run_pretrain.py``, run unmodified with the shims it needs.

``python -m s3prl_mi_probe.toolkit.run_pretrain ARGS`` runs it as ``run_pretrain.py ARGS``; the
working directory must be :func:`pretraining_folder` (the script imports ``pretrain.runner`` and
lists ``pretrain/``). Its imports are top-level ``pretrain``/``upstream``/``utility`` modules, never
the ``s3prl`` package, so the import hook does not fire: the compatibility layer is activated
first, plus two stand-ins that only this code path needs:

* ``utility/audio.py`` imports ``librosa`` at module level, which is not a dependency here (only its
  feature-extraction helpers use it; APC pretraining does not): a stand-in module whose attributes raise
  AttributeError.
* ``utility.audio._save_figure_to_numpy`` (called every ``log_step`` to log spectrograms) uses
  ``canvas.tostring_rgb`` (gone in matplotlib >= 3.10) and ``np.fromstring`` (binary mode gone in
  NumPy 2): replaced by an equivalent using ``canvas.buffer_rgba``.

It prints one ``[pretrain_demo] shims active: ...`` line before the script starts.
"""

import importlib.util
import runpy
import sys
import types

from s3prl_mi_probe.toolkit.activation import activate
from s3prl_mi_probe.toolkit.distribution import s3prl_location


def pretraining_folder():
    """The installed s3prl package folder, where ``run_pretrain.py`` and ``pretrain/apc`` are; RuntimeError if not."""
    folder = s3prl_location()
    if folder is None:
        raise RuntimeError("s3prl is not installed")
    if not (folder / "run_pretrain.py").is_file() or not (folder / "pretrain" / "apc").is_dir():
        raise RuntimeError(f"{folder} has no run_pretrain.py / pretrain/apc (this s3prl cannot pretrain)")
    return folder


def _missing_librosa(name):
    raise AttributeError(f"librosa.{name}: librosa is not installed (s3prl_mi_probe stand-in)")


def _add_librosa_stand_in():
    if importlib.util.find_spec("librosa") is None:
        librosa = types.ModuleType("librosa", "Stand-in (s3prl_mi_probe.toolkit): librosa is not installed.")
        librosa.__getattr__ = _missing_librosa
        sys.modules["librosa"] = librosa


def _save_figure_to_numpy(fig):
    import numpy as np

    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3].transpose(2, 0, 1))


def _replace_figure_saver():
    import utility.audio
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not hasattr(FigureCanvasAgg, "tostring_rgb"):
        utility.audio._save_figure_to_numpy = _save_figure_to_numpy


def main(argv):
    """Run ``run_pretrain.py`` of the working directory as ``__main__`` with ``argv`` after the shims."""
    activate()
    _add_librosa_stand_in()
    _replace_figure_saver()
    import torchaudio

    print(
        f"[pretrain_demo] shims active: torchaudio.load={torchaudio.load.__module__}.{torchaudio.load.__name__}, "
        f"librosa={sys.modules['librosa'].__doc__[:11]!r}",
        flush=True,
    )
    sys.argv = ["run_pretrain.py", *argv]
    runpy.run_path("run_pretrain.py", run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
