"""Whole folders as ``{relative path: ...}``, for exact comparisons in tests: the one
folder walk the tests share."""

import os


def tree_paths(root: str, folders: bool = False) -> dict:
    """``{relative path: absolute path}`` of every file under ``root`` (and, with
    ``folders``, of every folder, as ``"relative/"``)."""
    found = {}
    for folder, subfolders, names in os.walk(root):
        if folders:
            for name in subfolders:
                path = os.path.join(folder, name)
                found[os.path.relpath(path, root) + "/"] = path
        for name in names:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = path
    return found


def tree_bytes(root: str, folders: bool = False) -> dict:
    """``{relative path: bytes}`` of every file under ``root`` (with ``folders``,
    also ``{"relative/": b""}`` per folder)."""
    found = {}
    for relative, path in tree_paths(root, folders).items():
        if relative.endswith("/"):
            found[relative] = b""
        else:
            with open(path, "rb") as handle:
                found[relative] = handle.read()
    return found
