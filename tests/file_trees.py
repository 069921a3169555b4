"""Whole folders as ``{relative path: bytes}``, for byte-exact comparisons in tests."""

import os


def tree_bytes(root: str) -> dict:
    """``{relative path: bytes}`` of every file under ``root``."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, root)] = handle.read()
    return found
