"""Local paths and ``gs://`` URIs alike, through ``tf.io.gfile``.

Every finished file the tools produce appears under its final name in one step:
it is written under a temporary name beside it and renamed. A killed run therefore
leaves at most ``*.tmp-*`` files, which are never taken for finished ones and are
swept by the next run (:func:`remove_temporaries`).
"""

import contextlib
import hashlib
import json
import os
import posixpath
import uuid
from typing import Any, Iterator

from coreLib.cli import import_tensorflow_quietly
from coreLib.errors import ActrecogError

tf = import_tensorflow_quietly()

TEMP_MARKER = ".tmp-"
_HASH_CHUNK_BYTES = 4 << 20


def is_remote(path: str) -> bool:
    """True for URIs such as ``gs://bucket/x`` (anything with a scheme)."""
    return "://" in path


def join(base: str, *parts: str) -> str:
    """Joins path parts with '/', for local paths and URIs alike."""
    if is_remote(base):
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def absolute(path: str) -> str:
    """An absolute local path, or the URI unchanged."""
    return path if is_remote(path) else os.path.abspath(path)


def exists(path: str) -> bool:
    return tf.io.gfile.exists(path)


def isdir(path: str) -> bool:
    return tf.io.gfile.isdir(path)


def makedirs(path: str) -> None:
    tf.io.gfile.makedirs(path)


def listdir(path: str) -> list:
    """Sorted entry names of a folder (sub-folder names without a trailing '/')."""
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(path))


def temporary_name(path: str) -> str:
    """A unique sibling name for writing ``path`` before the final rename."""
    return f"{path}{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path to write; renames it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    temp = temporary_name(path)
    try:
        yield temp
        tf.io.gfile.rename(temp, path, overwrite=True)
    except BaseException:
        with contextlib.suppress(Exception):
            if tf.io.gfile.exists(temp):
                tf.io.gfile.remove(temp)
        raise


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that it appears whole or not at all."""
    with atomic_path(path) as temp:
        with tf.io.gfile.GFile(temp, "wb") as handle:
            handle.write(data)


def write_text_atomic(path: str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str, value: Any, indent: int = 1) -> None:
    """Writes JSON with sorted keys, so equal values give equal bytes."""
    write_text_atomic(path, json.dumps(value, indent=indent, sort_keys=True) + "\n")


def read_bytes(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as handle:
        return handle.read()


def read_json(path: str, what: str = "JSON file") -> Any:
    """Reads a JSON file; a missing or malformed file is an ActrecogError."""
    if not tf.io.gfile.exists(path):
        raise ActrecogError(f"{path}: {what} not found")
    try:
        return json.loads(read_bytes(path).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ActrecogError(f"{path}: not valid JSON ({error})") from None


def sha256_of(path: str) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as handle:
        while True:
            chunk = handle.read(_HASH_CHUNK_BYTES)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def remove_temporaries(folder: str) -> int:
    """Deletes leftover ``*.tmp-*`` files directly in ``folder``; returns how many."""
    if not tf.io.gfile.isdir(folder):
        return 0
    removed = 0
    for name in tf.io.gfile.listdir(folder):
        if TEMP_MARKER in name and not name.endswith("/"):
            tf.io.gfile.remove(join(folder, name))
            removed += 1
    return removed


def check_writable(folder: str) -> None:
    """Creates ``folder`` if needed and proves a file can be written there.

    Raises:
        ActrecogError: naming the folder when it cannot be created or written.
    """
    try:
        tf.io.gfile.makedirs(folder)
        probe = join(folder, f".write-probe{TEMP_MARKER}{os.getpid()}")
        with tf.io.gfile.GFile(probe, "wb") as handle:
            handle.write(b"ok")
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as error:
        reason = getattr(error, "message", None) or str(error)
        raise ActrecogError(f"{folder}: not writable ({reason.splitlines()[0]})") from None
