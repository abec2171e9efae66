"""Which distribution provides the ``s3prl`` package: s3prl from PyPI (0.4.18) or ESPnet's fork (espnet-s3prl).

Both install the same ``s3prl/`` folder, so this project depends on neither in its base install: the
extras ``[s3prl]`` and ``[espnet]`` pick one. Nothing here imports s3prl or torch.
"""

import functools
import importlib.util
from importlib import metadata
from pathlib import Path

PACKAGE = "s3prl"
INSTALL_HINT = (
    "pip install 's3prl-mi-probe[s3prl]' (s3prl 0.4.18 from PyPI) or "
    "pip install 's3prl-mi-probe[espnet]' (ESPnet's maintained fork, espnet-s3prl)"
)


class S3prlMissing(RuntimeError):
    """s3prl is not installed; the message says both ways to install it."""


@functools.cache
def s3prl_distributions():
    """``{distribution name: version}`` of every installed distribution that provides the ``s3prl`` package.

    More than one means that one was installed over the other: the files are whichever came last. Read once
    per process: it reads the file lists of every installed distribution (1-2 s), and every result's
    provenance asks (a benchmark run asked 12 times).
    """
    names = metadata.packages_distributions().get(PACKAGE, [])
    return {name: metadata.version(name) for name in dict.fromkeys(names)}


def s3prl_location():
    """The folder of the installed ``s3prl`` package (found without importing it), or None."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def require_s3prl():
    """Raise :class:`S3prlMissing` (one line naming both ways to install it) when s3prl cannot be imported."""
    if s3prl_location() is None:
        raise S3prlMissing(f"s3prl is not installed; install it with {INSTALL_HINT}")
