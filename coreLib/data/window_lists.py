"""The JSON window lists of ``DataSet/``: one schema for the writer and the readers.

Each list (``mode:<split>_numOfSeqences:<n>_minSeqLen:<L>.json``) holds entries::

    {"class": name, "flip": 0..3, "path": sequence folder, "rotation": degrees,
     "start": first frame, "stop": last frame (inclusive)}

main.py writes them (:func:`write_window_list`, streamed: millions of entries with
``--offline-augment``), score.py and detect.py read them (:func:`parse_entries`).
TensorFlow-free.
"""

import json
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from coreLib import storage
from coreLib.data import frames
from coreLib.errors import ActrecogError

CLASS_KEY = "class"
FLIP_KEY = "flip"
PATH_KEY = "path"
ROTATION_KEY = "rotation"
START_KEY = "start"
STOP_KEY = "stop"
REQUIRED_KEYS = (PATH_KEY, START_KEY, STOP_KEY, CLASS_KEY)
# A window is named by its first colour frame in the Results, as the 2019 tool did
# (videogen.py and other consumers read that frame).
RESULT_FRAME_MODALITY = "color"


@dataclass(frozen=True)
class ListedWindow:
    """One entry of a window list.

    Attributes:
        path: sequence folder (local path or URI).
        start, stop: first and last frame index (inclusive).
        label: class index into the manifest's classes.
        rotation, flip: augmentation to apply (0 for Eval and Test).
    """
    path: str
    start: int
    stop: int
    label: int
    rotation: int = 0
    flip: int = 0

    @property
    def first_frame_path(self) -> str:
        return frames.frame_path(self.path, RESULT_FRAME_MODALITY, self.start)


def entry_text(class_text: str, path_text: str, start: int, stop: int, rotation: int,
               flip: int) -> str:
    """One list item exactly as ``json.dumps(entries, indent=1, sort_keys=True)``
    writes it (``class_text`` and ``path_text`` already JSON-encoded)."""
    return (f' {{\n  "{CLASS_KEY}": {class_text},\n  "{FLIP_KEY}": {flip},\n'
            f'  "{PATH_KEY}": {path_text},\n  "{ROTATION_KEY}": {rotation},\n'
            f'  "{START_KEY}": {start},\n  "{STOP_KEY}": {stop}\n }}')


def _integer(entry: dict, key: str, where: str) -> int:
    value = entry.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ActrecogError(f"{where}: {key!r} must be an integer, got {value!r}")
    return value


def parse_entries(json_path: str, entries, seq_len: int,
                  classes: Sequence[str]) -> List[ListedWindow]:
    """Checks a decoded window list against the window length and the classes.

    Args:
        json_path: the file, for messages.
        entries: the decoded JSON value.
        seq_len: frames per window L.
        classes: class names in label-index order.

    Returns:
        The windows, in list order.

    Raises:
        ActrecogError: not a non-empty list, an entry without path/start/stop/class,
            a window of the wrong length, or an unknown class (each naming the entry).
    """
    if not isinstance(entries, list):
        raise ActrecogError(f"{json_path}: expected a JSON list of windows, "
                            f"got {type(entries).__name__}")
    if not entries:
        raise ActrecogError(f"{json_path}: the list of windows is empty")
    windows = []
    for number, entry in enumerate(entries):
        where = f"{json_path}: entry {number}"
        if not isinstance(entry, dict):
            raise ActrecogError(f"{where}: expected an object, got {type(entry).__name__}")
        missing = [key for key in REQUIRED_KEYS if key not in entry]
        if missing:
            raise ActrecogError(f"{where}: missing {', '.join(missing)}")
        if not isinstance(entry[PATH_KEY], str) or not entry[PATH_KEY]:
            raise ActrecogError(f"{where}: 'path' must be a folder name")
        start, stop = _integer(entry, START_KEY, where), _integer(entry, STOP_KEY, where)
        if start < 0 or stop - start + 1 != seq_len:
            raise ActrecogError(f"{where}: window {start}..{stop} is not "
                                f"{seq_len} frames (the manifest's seq_len)")
        name = entry[CLASS_KEY]
        if name not in classes:
            raise ActrecogError(f"{where}: class {name!r} is not in the manifest's "
                                f"classes")
        windows.append(ListedWindow(entry[PATH_KEY], start, stop, list(classes).index(name),
                                    _integer(entry, ROTATION_KEY, where),
                                    _integer(entry, FLIP_KEY, where)))
    return windows


def read_window_list(json_path: str, seq_len: int, classes: Sequence[str],
                     what: str = "Test JSON") -> List[ListedWindow]:
    """Reads and checks a window list file (see :func:`parse_entries`)."""
    return parse_entries(json_path, storage.read_json(json_path, what), seq_len, classes)


def encode(value) -> str:
    """JSON text of one string or number, as the list writer embeds it."""
    return json.dumps(value)


@dataclass(frozen=True)
class WindowColumns:
    """A list's windows as parallel ``(W,)`` int arrays, for the writer.

    Attributes:
        seq_len: L (``stop = start + L - 1``).
        classes: class names by label index.
        sequence_paths: sequence folder by sequence index.
        sequence, start, label, rotation, flip: per window.
    """
    seq_len: int
    classes: Sequence[str]
    sequence_paths: Sequence[str]
    sequence: np.ndarray
    start: np.ndarray
    label: np.ndarray
    rotation: np.ndarray
    flip: np.ndarray

    def __len__(self) -> int:
        return len(self.start)


def _entry_texts(windows: WindowColumns, begin: int, end: int) -> List[str]:
    """JSON text of windows ``begin:end``, exactly as ``json.dumps(indent=1,
    sort_keys=True)`` writes a list item (built by hand: millions of entries)."""
    class_texts = [encode(name) for name in windows.classes]
    texts = []
    for sequence, start, label, rotation, flip in zip(
            windows.sequence[begin:end].tolist(), windows.start[begin:end].tolist(),
            windows.label[begin:end].tolist(), windows.rotation[begin:end].tolist(),
            windows.flip[begin:end].tolist()):
        texts.append(entry_text(class_texts[label], encode(windows.sequence_paths[sequence]),
                                start, start + windows.seq_len - 1, rotation, flip))
    return texts


def write_window_list(path: str, windows: WindowColumns, chunk: int = 8192) -> int:
    """Writes a split's JSON list atomically, streaming; returns its size in bytes.

    The bytes equal ``storage.write_json_atomic(path, entries)`` of the entries.
    """
    size = 0
    with storage.atomic_path(path) as temp:
        with storage.open_file(temp, "wb") as handle:
            if len(windows) == 0:
                handle.write(b"[]\n")
                return 3
            for begin in range(0, len(windows), chunk):
                prefix = "[\n" if begin == 0 else ",\n"
                data = (prefix + ",\n".join(
                    _entry_texts(windows, begin, begin + chunk))).encode()
                handle.write(data)
                size += len(data)
            handle.write(b"\n]\n")
    return size + 3
