"""File writes that never leave a half-written file (or folder) behind, with the modes the umask gives.

Temporary files and folders are created private (``tempfile``); once written they get the mode a
plain ``open``/``mkdir`` would have given them (0666 or 0777 less the umask), so collaborators who
may read the folder may read the results.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path


def current_umask():
    """The process's umask, read without changing it where /proc tells it (else set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(path, data):
    """Write ``data`` (bytes) to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o666 & ~current_umask())
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_text_atomic(path, text):
    """Write ``text`` (UTF-8) to a temporary file beside ``path``, then rename it over ``path``."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, data):
    """Atomically write ``data`` as indented JSON."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def replace_folder(path, fill):
    """Build a folder with ``fill(temporary_folder)`` beside ``path``, then put it in place of ``path``.

    Nothing of an earlier ``path`` survives (no stale files), and an interrupted ``fill`` leaves the
    earlier folder as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        os.chmod(temporary, 0o777 & ~current_umask())
        fill(temporary)
        if path.exists():
            retired = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, retired / path.name)
            os.replace(temporary, path)
            shutil.rmtree(retired)
        else:
            os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def append_jsonl(path, rows):
    """Append rows as JSON lines with one write and an fsync, so a crash loses whole rows only."""
    text = "".join(json.dumps(row) + "\n" for row in rows)
    with open(path, "a") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
