"""Local paths and ``gs://`` URIs alike: local files through ``os``, URIs through
``tf.io.gfile``.

TensorFlow is imported only when a URI is actually used (or ``storage.tf`` is
asked for): the base and data modules that read labels, frames and the manifest
import this module, and main.py's decoding workers, videogen.py and the manifest
readers must not pay seconds and ~700 MB per process for TensorFlow.

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
import shutil
import sys
import uuid
from typing import Any, Iterator

from coreLib.cli import import_tensorflow_quietly
from coreLib.errors import ActrecogError

TEMP_MARKER = ".tmp-"
_HASH_CHUNK_BYTES = 4 << 20


def __getattr__(name: str):
    """``storage.tf``: TensorFlow, imported (quietly) on first use."""
    if name == "tf":
        return import_tensorflow_quietly()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _gfile():
    return import_tensorflow_quietly().io.gfile


def io_errors() -> tuple:
    """The exceptions a failed file operation raises: OSError, and TensorFlow's
    OpError once TensorFlow is loaded (a URI operation loads it first)."""
    errors = getattr(sys.modules.get("tensorflow"), "errors", None)
    return (OSError,) if errors is None else (OSError, errors.OpError)


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


def is_within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (links resolved; a path that
    does not exist yet is judged by the part that does; URIs by their text)."""
    if is_remote(path) != is_remote(folder):
        return False
    if is_remote(path):
        path, folder = path.rstrip("/"), folder.rstrip("/")
        return path == folder or path.startswith(folder + "/")
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def exists(path: str) -> bool:
    """Whether ``path`` (a file or a folder, local or URI) exists."""
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
    """Whether ``path`` (local or URI) is a folder."""
    return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def makedirs(path: str) -> None:
    """Creates the folder and its parents; nothing when it exists."""
    if is_remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def listdir(path: str) -> list:
    """Sorted entry names of a folder (sub-folder names without a trailing '/')."""
    names = _gfile().listdir(path) if is_remote(path) else os.listdir(path)
    return sorted(name.rstrip("/") for name in names)


def open_file(path: str, mode: str = "rb"):
    """A file object: ``open()`` for a local path, ``GFile`` for a URI."""
    return _gfile().GFile(path, mode) if is_remote(path) else open(path, mode)


def rename(source: str, target: str) -> None:
    """Renames ``source`` to ``target``, replacing it."""
    if is_remote(target):
        _gfile().rename(source, target, overwrite=True)
    else:
        os.replace(source, target)


def file_size(path: str) -> int:
    """Size of a file in bytes."""
    return _gfile().stat(path).length if is_remote(path) else os.path.getsize(path)


def copy_file(source: str, target: str) -> None:
    """Copies a file between local paths and URIs (replacing ``target``)."""
    if is_remote(source) or is_remote(target):
        _gfile().copy(source, target, overwrite=True)
    else:
        shutil.copyfile(source, target)


def remove(path: str) -> None:
    """Deletes one file (local or URI)."""
    if is_remote(path):
        _gfile().remove(path)
    else:
        os.remove(path)


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
        rename(temp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            if exists(temp):
                remove(temp)
        raise


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that it appears whole or not at all."""
    with atomic_path(path) as temp:
        with open_file(temp, "wb") as handle:
            handle.write(data)


def write_text_atomic(path: str, text: str) -> None:
    """Writes ``text`` as UTF-8, whole or not at all."""
    write_bytes_atomic(path, text.encode("utf-8"))


def json_bytes(value: Any, indent: int = 1) -> bytes:
    """The project's JSON files' bytes: sorted keys (equal values, equal bytes),
    ``indent`` spaces, a final newline, UTF-8."""
    return (json.dumps(value, indent=indent, sort_keys=True) + "\n").encode("utf-8")


def write_json_atomic(path: str, value: Any, indent: int = 1) -> None:
    """Writes :func:`json_bytes` of ``value``, whole or not at all."""
    write_bytes_atomic(path, json_bytes(value, indent))


def read_bytes(path: str) -> bytes:
    """The whole file's bytes (local path or URI)."""
    with open_file(path, "rb") as handle:
        return handle.read()


def read_json(path: str, what: str = "JSON file") -> Any:
    """Reads a JSON file; a missing or malformed file is an ActrecogError."""
    if not exists(path):
        raise ActrecogError(f"{path}: {what} not found")
    try:
        return json.loads(read_bytes(path).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ActrecogError(f"{path}: not valid JSON ({error})") from None


def sha256_of(path: str) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open_file(path, "rb") as handle:
        while True:
            chunk = handle.read(_HASH_CHUNK_BYTES)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def remove_temporaries(folder: str) -> int:
    """Deletes leftover ``*.tmp-*`` files directly in ``folder``; returns how many."""
    if not isdir(folder):
        return 0
    removed = 0
    for name in listdir(folder):
        path = join(folder, name)
        if TEMP_MARKER in name and not isdir(path):
            remove(path)
            removed += 1
    return removed


def check_writable(folder: str) -> None:
    """Creates ``folder`` if needed and proves a file can be written there.

    Raises:
        ActrecogError: naming the folder when it cannot be created or written.
    """
    try:
        makedirs(folder)
        probe = join(folder, f".write-probe{TEMP_MARKER}{os.getpid()}")
        with open_file(probe, "wb") as handle:
            handle.write(b"ok")
        remove(probe)
    except io_errors() as error:
        reason = getattr(error, "message", None) or str(error)
        raise ActrecogError(f"{folder}: not writable ({reason.splitlines()[0]})") from None
