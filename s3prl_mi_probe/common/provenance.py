"""Provenance of a result: package versions and content hashes of its inputs."""

import hashlib
from importlib import metadata
from pathlib import Path


def file_sha256(path):
    """Hex sha256 of a file's bytes, or None when ``path`` is not an existing file."""
    if path is None or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_provenance(manifest, manifest_sha256=None):
    """What every result records of its inputs: package versions, the manifest's path and sha256."""
    manifest = Path(manifest)
    return {
        "versions": package_versions(),
        "manifest": str(manifest.resolve()),
        "manifest_sha256": manifest_sha256 or file_sha256(manifest),
    }


def package_versions():
    """Versions of the packages that determine the numbers, by distribution name.

    s3prl is listed under the distribution that provides it: ``s3prl`` (PyPI) or ``espnet-s3prl``
    (ESPnet's fork); ``"s3prl": None`` when none does.
    """
    from s3prl_mi_probe.toolkit.distribution import s3prl_distributions

    versions = {}
    for name in ("s3prl-mi-probe", "torch", "torchaudio", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {**versions, **(s3prl_distributions() or {"s3prl": None})}
