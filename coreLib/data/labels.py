"""Reading the label files: OpenCV FileStorage XML with ``<_>`` items.

Each ``<_>`` item is one performance of the sequence's action, with integer
children ``pos`` (first frame index) and ``len`` (number of frames)::

    <opencv_storage>
    <label>
      <_>
        <pos>11</pos>
        <len>14</len></_>
    </label>
    </opencv_storage>

The name of the element enclosing the items differs between files and is not
documented, so every ``<_>`` element anywhere in the document counts; an ``<_>``
that itself holds ``<_>`` elements is a nested sequence, not an item.

This module needs neither TensorFlow nor OpenCV: it parses bytes.
"""

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import List, Tuple

from coreLib import storage
from coreLib.errors import ActrecogError

ITEM_TAG = "_"
POS_TAG = "pos"
LEN_TAG = "len"
_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class Interval:
    """One labelled performance: frames ``pos .. pos + len - 1``.

    Attributes:
        pos: first frame index (>= 0).
        len: number of frames (>= 1).
    """
    pos: int
    len: int

    @property
    def end(self) -> int:
        """One past the last frame of the interval."""
        return self.pos + self.len


def _integer_child(item, tag: str, index: int, path: str) -> int:
    children = item.findall(tag)
    if not children:
        raise ActrecogError(f"{path}: item {index} has no <{tag}>")
    if len(children) > 1:
        raise ActrecogError(f"{path}: item {index} has {len(children)} <{tag}> elements")
    text = (children[0].text or "").strip()
    if not _INTEGER.match(text):
        raise ActrecogError(f"{path}: item {index} <{tag}> is {text!r}, not an integer")
    value = int(text)
    if value < 0:
        raise ActrecogError(f"{path}: item {index} <{tag}> is negative ({value})")
    return value


def parse_label_xml(data: bytes, path: str = "<label file>") -> Tuple[Interval, ...]:
    """Parses a label file's bytes into its intervals, in file order.

    Args:
        data: the XML file's bytes.
        path: the file name, for error messages.

    Returns:
        The intervals of every ``<_>`` item (at least one).

    Raises:
        ActrecogError: malformed XML, no item, an item without ``pos`` or ``len``,
            a value that is not a non-negative integer, or ``len`` < 1.
    """
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, ValueError, UnicodeError) as error:
        raise ActrecogError(f"{path}: malformed XML ({error})") from None
    intervals = []
    items = [element for element in root.iter(ITEM_TAG)
             if element.find(ITEM_TAG) is None]
    for index, item in enumerate(items):
        pos = _integer_child(item, POS_TAG, index, path)
        length = _integer_child(item, LEN_TAG, index, path)
        if length < 1:
            raise ActrecogError(f"{path}: item {index} <{LEN_TAG}> is {length}, "
                                f"must be at least 1")
        intervals.append(Interval(pos, length))
    if not intervals:
        raise ActrecogError(f"{path}: no <_> items with <pos> and <len>")
    return tuple(intervals)


def check_intervals(intervals: Tuple[Interval, ...], num_frames: int, path: str,
                    clip: bool = False) -> Tuple[Tuple[Interval, ...], List[str]]:
    """Checks that every interval lies inside a sequence of ``num_frames`` frames.

    Args:
        intervals: as returned by :func:`parse_label_xml`.
        num_frames: N, frames in the sequence.
        path: the label file, for messages.
        clip: cut intervals that run past the last frame (dropping those that
            start after it) instead of failing.

    Returns:
        ``(intervals, warnings)``: the intervals to use, and one message per
        clipped interval (empty unless ``clip``).

    Raises:
        ActrecogError: an interval past the last frame, when not ``clip``.
    """
    kept, warnings = [], []
    for index, interval in enumerate(intervals):
        if interval.end <= num_frames:
            kept.append(interval)
            continue
        where = (f"{path}: item {index} (pos {interval.pos}, len {interval.len}) "
                 f"runs past the last frame {num_frames - 1}")
        if not clip:
            raise ActrecogError(f"{where} (use --clip-intervals to clip it)")
        if interval.pos < num_frames:
            kept.append(Interval(interval.pos, num_frames - interval.pos))
            warnings.append(f"{where}; clipped to len {num_frames - interval.pos}")
        else:
            warnings.append(f"{where}; dropped")
    return tuple(kept), warnings


def read_label_file(path: str) -> Tuple[Interval, ...]:
    """Reads and parses one label file (local path or URI).

    Raises:
        ActrecogError: unreadable file, or see :func:`parse_label_xml`.
    """
    try:
        data = storage.read_bytes(path)
    except storage.io_errors() as error:
        reason = getattr(error, "message", None) or str(error)
        raise ActrecogError(f"{path}: cannot read label file ({reason})") from None
    return parse_label_xml(data, path)
