"""Folder names made from labels: an upstream's runs live in one folder per upstream label (the sweep's
TensorBoard runs, a benchmark's cells), named the same way everywhere."""


def run_folder_name(upstream):
    """A folder name for an upstream label: ':' and '/' (and '\\') become '_'."""
    return upstream.replace(":", "_").replace("/", "_").replace("\\", "_")
