"""A tool's output folder replaced as one: built beside it, then swapped in.

detect.py's ``--out`` is written in full into a staging folder beside it
(``.<name>.<tool>.tmp-*``); only then does the staging folder take the output
folder's place. The folder is therefore, at every instant, the complete old
result or the complete new one - never the new files beside an earlier run's, and
a refused or failed run creates nothing at all.

Local folders swap by ``renameat2(RENAME_EXCHANGE)`` (Linux), one atomic step;
where the kernel or file system lacks it, by two renames, the old folder parked
beside it as ``.<name>.<tool>.old-*`` meanwhile and put back by the next run
(:func:`recover`) if a kill fell between them. A URI (no folder renames there)
gets the new files one by one after the old ones are removed, the tool's
signature file (``summary.json``) removed first and written last.
"""

import contextlib
import ctypes
import os
import posixpath
import shutil
import uuid
from typing import List, Tuple

from coreLib import storage
from coreLib.errors import ActrecogError

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _parent_and_name(folder: str) -> Tuple[str, str]:
    trimmed = folder.rstrip("/") or folder
    split = posixpath.split if storage.is_remote(trimmed) else os.path.split
    parent, name = split(trimmed)
    return parent or ".", name


def _prefix(folder: str, tool: str, kind: str) -> str:
    return f".{_parent_and_name(folder)[1]}.{tool}{kind}"


def staging_folder(folder: str, tool: str) -> str:
    """A new, not yet created staging path beside a local ``folder``."""
    parent, _ = _parent_and_name(folder)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return os.path.join(parent, _prefix(folder, tool, storage.TEMP_MARKER) + tag)


def _leftovers(folder: str, tool: str, kind: str) -> List[str]:
    parent, _ = _parent_and_name(folder)
    prefix = _prefix(folder, tool, kind)
    if not os.path.isdir(parent):
        return []
    return [os.path.join(parent, name) for name in sorted(os.listdir(parent))
            if name.startswith(prefix)]


def recover(folder: str, tool: str) -> None:
    """Puts back an old folder parked by an interrupted two-rename swap and
    removes the staging folders of interrupted runs (local folders only)."""
    if storage.is_remote(folder):
        return
    parked = _leftovers(folder, tool, ".old-")
    if parked and not os.path.exists(folder):
        os.rename(parked.pop(), folder)
    for path in parked + _leftovers(folder, tool, storage.TEMP_MARKER):
        shutil.rmtree(path, ignore_errors=True)


def check_replaceable(folder: str, signature: str, option: str, tool: str) -> None:
    """The folder must be absent, empty or an earlier output of the tool (holding
    ``signature``), since it is replaced as a whole; its parent must be writable.
    Creates nothing.

    Args:
        folder: the output folder.
        signature: the file every complete output of the tool holds.
        option: the argument that named the folder (for messages).
        tool: the script, for messages.

    Raises:
        ActrecogError: a file there, a folder of other files, or no write access.
    """
    if storage.exists(folder) and not storage.isdir(folder):
        raise ActrecogError(f"{option} {folder}: a file, not a folder")
    if storage.isdir(folder):
        entries = [entry.rstrip("/") for entry in storage.listdir(folder)]
        if entries and signature not in entries:
            raise ActrecogError(f"{option} {folder}: holds files but no {signature}, so "
                                f"it is not a {tool} output (which would be replaced as "
                                f"a whole); choose a new or empty folder")
    if storage.is_remote(folder):
        return
    ancestor = os.path.abspath(folder)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    target = os.path.dirname(os.path.abspath(folder)) if os.path.exists(folder) else ancestor
    if not os.path.isdir(target) or not os.access(target, os.W_OK | os.X_OK):
        raise ActrecogError(f"{option} {folder}: not writable ({target} does not allow it)")


def _exchange(first: str, second: str) -> bool:
    """Swaps two local paths atomically; False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    return renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                     _RENAME_EXCHANGE) == 0


def swap_in(staging: str, folder: str, tool: str) -> None:
    """Puts the complete local ``staging`` folder in ``folder``'s place."""
    if not os.path.exists(folder):
        os.makedirs(os.path.dirname(os.path.abspath(folder)), exist_ok=True)
        os.rename(staging, folder)
        return
    if _exchange(staging, folder):
        shutil.rmtree(staging, ignore_errors=True)   # now the old folder
        return
    parent, _ = _parent_and_name(folder)
    parked = os.path.join(parent, _prefix(folder, tool, ".old-") + uuid.uuid4().hex[:8])
    os.rename(folder, parked)
    os.rename(staging, folder)
    with contextlib.suppress(OSError):
        shutil.rmtree(parked)


def clear_remote(folder: str, signature: str) -> None:
    """Empties a URI output folder, its signature file first (a kill then leaves
    no complete-looking output)."""
    gfile = storage.tf.io.gfile
    if not gfile.isdir(folder):
        return
    if gfile.exists(storage.join(folder, signature)):
        gfile.remove(storage.join(folder, signature))
    for name in gfile.listdir(folder):
        path = storage.join(folder, name.rstrip("/"))
        if gfile.isdir(path):
            gfile.rmtree(path)
        else:
            gfile.remove(path)
