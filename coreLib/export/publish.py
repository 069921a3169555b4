"""Staging and publishing: an export is built in a folder beside OUT_DIR and takes
OUT_DIR's place in one step (``coreLib.folder_swap``, as detect.py's ``--out``), so
OUT_DIR is at every instant the complete old export or the complete new one (never
a mix, never files of an earlier export that the new one does not write). A URI
OUT_DIR (no folder renames there) gets the files one by one, the old ``export.json``
removed first and the new one written last.
"""

import hashlib
import os
import posixpath
from typing import Dict, Tuple

from coreLib import folder_swap, storage
from coreLib.inference import exported_model

tf = storage.tf

TOOL = "export"
STAGING_MARKER = f".{TOOL}{storage.TEMP_MARKER}"


def staging_folder(out_dir: str) -> str:
    """A fresh staging folder's path beside OUT_DIR."""
    return folder_swap.staging_folder(out_dir, TOOL)


def remove_path(path: str) -> None:
    """Deletes a file or a whole folder (local or URI); nothing when it is absent."""
    if storage.isdir(path):
        tf.io.gfile.rmtree(path)
    elif storage.exists(path):
        tf.io.gfile.remove(path)


def recover(out_dir: str) -> None:
    """Puts back an old export parked by an interrupted two-rename swap, and
    deletes staging folders of interrupted exports."""
    folder_swap.recover(out_dir, TOOL)


def check_out_dir(out_dir: str) -> None:
    """OUT_DIR must be absent, empty or an earlier export (it is replaced as a
    whole), and its parent writable. Creates nothing.

    Raises:
        ActrecogError: OUT_DIR is a file, holds other files, or cannot be written.
    """
    folder_swap.check_replaceable(out_dir, exported_model.EXPORT_JSON_NAME, "OUT_DIR",
                                  "export.py")


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


def _publish_remote(out_dir: str, staging: str) -> None:
    json_name = exported_model.EXPORT_JSON_NAME
    folder_swap.clear_remote(out_dir, json_name)
    storage.makedirs(out_dir)
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
    else:
        folder_swap.swap_in(staging, out_dir, TOOL)


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
