"""Staging and publishing: an export is built in a folder beside OUT_DIR and takes
OUT_DIR's place in one step, so OUT_DIR is at every instant the complete old
export or the complete new one (never a mix, never files of an earlier export
that the new one does not write).

Local folders swap by ``renameat2(RENAME_EXCHANGE)`` (Linux): one atomic step;
where the kernel or file system lacks it, by two renames, the old export parked
beside OUT_DIR under ``.<name>.export.old-*`` meanwhile and put back by the next
export if a kill fell between them. A URI OUT_DIR (no folder renames there) gets
the files one by one, the old ``export.json`` removed first and the new one
written last.
"""

import contextlib
import ctypes
import hashlib
import os
import posixpath
import uuid
from typing import Dict, Tuple

from coreLib import storage
from coreLib.errors import ActrecogError
from coreLib.inference import exported_model

tf = storage.tf

STAGING_MARKER = f".export{storage.TEMP_MARKER}"
PARKED_MARKER = ".export.old-"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _parent_and_name(out_dir: str) -> Tuple[str, str]:
    trimmed = out_dir.rstrip("/") or out_dir
    parent, name = os.path.split(trimmed) if not storage.is_remote(trimmed) else \
        posixpath.split(trimmed)
    return parent or ".", name


def staging_folder(out_dir: str) -> str:
    """A fresh staging folder's path beside OUT_DIR (local) or inside it (URI)."""
    parent, name = _parent_and_name(out_dir)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if storage.is_remote(out_dir):
        return storage.join(out_dir, f"{STAGING_MARKER}{tag}")
    return storage.join(parent, f".{name}{STAGING_MARKER}{tag}")


def _leftovers(out_dir: str, marker: str):
    parent, name = _parent_and_name(out_dir)
    folder, prefix = ((out_dir, marker) if storage.is_remote(out_dir)
                      else (parent, f".{name}{marker}"))
    if not storage.isdir(folder):
        return []
    return [storage.join(folder, entry.rstrip("/")) for entry in storage.listdir(folder)
            if entry.startswith(prefix)]


def remove_path(path: str) -> None:
    if storage.isdir(path):
        tf.io.gfile.rmtree(path)
    elif storage.exists(path):
        tf.io.gfile.remove(path)


def recover(out_dir: str) -> None:
    """Puts back an old export parked by an interrupted two-rename swap, and
    deletes staging folders of interrupted exports."""
    parked = _leftovers(out_dir, PARKED_MARKER)
    if parked and not storage.exists(out_dir):
        os.rename(parked.pop(), out_dir)
    for path in parked + _leftovers(out_dir, STAGING_MARKER):
        remove_path(path)


def check_out_dir(out_dir: str) -> None:
    """OUT_DIR must be absent, empty or an earlier export (it is replaced as a
    whole), and its parent writable. Creates nothing.

    Raises:
        ActrecogError: OUT_DIR is a file, holds other files, or cannot be written.
    """
    if storage.exists(out_dir) and not storage.isdir(out_dir):
        raise ActrecogError(f"{out_dir}: OUT_DIR is a file, not a folder")
    if storage.isdir(out_dir):
        entries = [entry for entry in storage.listdir(out_dir)
                   if not entry.startswith(STAGING_MARKER)]
        if entries and exported_model.EXPORT_JSON_NAME not in entries:
            raise ActrecogError(f"{out_dir}: OUT_DIR holds files but no "
                                f"{exported_model.EXPORT_JSON_NAME} (not an export.py "
                                f"export, which would be replaced as a whole); choose a new "
                                f"or empty folder")
    if storage.is_remote(out_dir):
        return
    ancestor = os.path.abspath(out_dir)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    target = os.path.dirname(os.path.abspath(out_dir)) if os.path.exists(out_dir) else ancestor
    if not os.access(target, os.W_OK | os.X_OK):
        raise ActrecogError(f"{out_dir}: not writable ({target} does not allow it)")


def folder_digest(folder: str) -> Tuple[int, str, int]:
    """``(bytes, sha256, files)`` of a folder: the sha256 over each file's relative
    path and sha256, in sorted order (equal trees give equal digests)."""
    total, count = 0, 0
    digest = hashlib.sha256()
    for root, _, names in sorted(tf.io.gfile.walk(folder)):
        for name in sorted(names):
            path = storage.join(root, name)
            relative = posixpath.relpath(path.replace(os.sep, "/"),
                                         folder.replace(os.sep, "/"))
            digest.update(f"{relative}\0{storage.sha256_of(path)}\n".encode())
            total += tf.io.gfile.stat(path).length
            count += 1
    return total, digest.hexdigest(), count


def _exchange(first: str, second: str) -> bool:
    """Swaps two local paths atomically; False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    return renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                     _RENAME_EXCHANGE) == 0


def _publish_remote(out_dir: str, staging: str) -> None:
    json_name = exported_model.EXPORT_JSON_NAME
    remove_path(storage.join(out_dir, json_name))
    for name in storage.listdir(out_dir):
        name = name.rstrip("/")
        if not name.startswith(STAGING_MARKER):
            remove_path(storage.join(out_dir, name))
    for name in storage.listdir(staging):
        name = name.rstrip("/")
        if name != json_name:
            tf.io.gfile.rename(storage.join(staging, name), storage.join(out_dir, name))
    tf.io.gfile.rename(storage.join(staging, json_name), storage.join(out_dir, json_name))


def publish(out_dir: str, staging: str, description: dict) -> None:
    """Writes ``export.json`` into the staging folder and puts the folder in
    OUT_DIR's place (see the module docstring)."""
    storage.write_json_atomic(storage.join(staging, exported_model.EXPORT_JSON_NAME),
                              description)
    if storage.is_remote(out_dir):
        _publish_remote(out_dir, staging)
        return
    if not os.path.exists(out_dir):
        os.makedirs(os.path.dirname(os.path.abspath(out_dir)), exist_ok=True)
        os.rename(staging, out_dir)
        return
    if _exchange(staging, out_dir):
        remove_path(staging)   # now the old export
        return
    parent, name = _parent_and_name(out_dir)
    parked = storage.join(parent, f".{name}{PARKED_MARKER}{uuid.uuid4().hex[:8]}")
    os.rename(out_dir, parked)
    os.rename(staging, out_dir)
    with contextlib.suppress(OSError):
        remove_path(parked)


def staged_entries(staging: str, ops: Dict[str, list]) -> dict:
    """``export.json``'s ``files``: bytes and sha256 per staged file (folders too)."""
    files = {}
    for name in sorted(entry.rstrip("/") for entry in storage.listdir(staging)):
        path = storage.join(staging, name)
        if storage.isdir(path):
            size, digest, count = folder_digest(path)
            files[name] = {"bytes": size, "sha256": digest, "files": count}
        else:
            files[name] = {"bytes": storage.file_size(path), "sha256": storage.sha256_of(path)}
        if name in ops:
            files[name]["ops"] = ops[name]
    return files
