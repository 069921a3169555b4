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

The long sequences of the ``TestDetection/`` split hold several different
actions, so their items also name the action (the published files could not be
read from here; this is the form the project writes and expects)::

      <_>
        <pos>120</pos>
        <len>24</len>
        <action>ui-swipe</action></_>

:func:`label_file_xml` writes both forms, :func:`parse_label_xml` reads the
positions of either, :func:`parse_action_label_xml` the action-carrying form;
:func:`truth_from_labels` turns either into one class per frame (detect.py's
ground truth).

This module needs neither TensorFlow nor OpenCV: it parses and writes bytes.
"""

import os
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape

import numpy as np

from coreLib import storage
from coreLib.errors import ActrecogError

ITEM_TAG = "_"
POS_TAG = "pos"
LEN_TAG = "len"
ACTION_TAG = "action"
# The split whose label files name the action of each item.
DETECTION_SPLIT = "TestDetection"
ACTION_ITEM_FORM = "<_><pos>..</pos><len>..</len><action>NAME</action></_>"
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


@dataclass(frozen=True)
class ActionInterval:
    """One labelled performance of a named action (a TestDetection item).

    Attributes:
        pos: first frame index (>= 0).
        len: number of frames (>= 1).
        action: the action's name.
    """
    pos: int
    len: int
    action: str

    @property
    def end(self) -> int:
        """One past the last frame of the interval."""
        return self.pos + self.len


def label_file_xml(items: Iterable[Sequence], container: str = "label") -> str:
    """A label file as OpenCV's FileStorage writes it, one ``<_>`` per item.

    Args:
        items: ``(pos, len)`` pairs (Train/Test files: one action per file) or
            ``(pos, len, action)`` triples (TestDetection files).
        container: name of the element around the items.

    Returns:
        The file's text, ending in a newline.
    """
    lines = ['<?xml version="1.0"?>', "<opencv_storage>", f"<{container}>"]
    for item in items:
        if len(item) not in (2, 3):
            raise ValueError(f"label item {item!r} is not (pos, len) or (pos, len, action)")
        lines += ["  <_>", f"    <{POS_TAG}>{int(item[0])}</{POS_TAG}>"]
        if len(item) == 2:
            lines.append(f"    <{LEN_TAG}>{int(item[1])}</{LEN_TAG}></_>")
        else:
            lines += [f"    <{LEN_TAG}>{int(item[1])}</{LEN_TAG}>",
                      f"    <{ACTION_TAG}>{escape(str(item[2]))}</{ACTION_TAG}></_>"]
    lines += [f"</{container}>", "</opencv_storage>", ""]
    return "\n".join(lines)


def write_label_file(path: str, items: Iterable[Sequence], container: str = "label") -> None:
    """Writes :func:`label_file_xml` to ``path`` atomically (a label file is never
    half written)."""
    storage.write_text_atomic(path, label_file_xml(items, container))


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
    return tuple(Interval(pos, length) for pos, length, _ in _parse_items(data, path))


def _parse_items(data: bytes, path: str) -> list:
    """``(pos, len, item element)`` of every ``<_>`` item, in file order."""
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, ValueError, UnicodeError) as error:
        raise ActrecogError(f"{path}: malformed XML ({error})") from None
    parsed = []
    items = [element for element in root.iter(ITEM_TAG)
             if element.find(ITEM_TAG) is None]
    for index, item in enumerate(items):
        pos = _integer_child(item, POS_TAG, index, path)
        length = _integer_child(item, LEN_TAG, index, path)
        if length < 1:
            raise ActrecogError(f"{path}: item {index} <{LEN_TAG}> is {length}, "
                                f"must be at least 1")
        parsed.append((pos, length, item))
    if not parsed:
        raise ActrecogError(f"{path}: no <_> items with <pos> and <len>")
    return parsed


def parse_action_label_xml(data: bytes, known_actions: Sequence[str],
                           path: str = "<label file>") -> Tuple[ActionInterval, ...]:
    """Parses a TestDetection label file: items that name their action.

    Args:
        data: the XML file's bytes.
        known_actions: the action names a label may use.
        path: the file name, for error messages.

    Returns:
        The items in file order (at least one), none overlapping another.

    Raises:
        ActrecogError: what :func:`parse_label_xml` refuses, an item without one
            ``<action>`` (the message shows the expected item form), an action not
            in ``known_actions``, or two items that share a frame.
    """
    known = set(known_actions)
    found = []
    for index, (pos, length, item) in enumerate(_parse_items(data, path)):
        children = item.findall(ACTION_TAG)
        if len(children) != 1 or not (children[0].text or "").strip():
            what = "has no <action>" if not children else (
                f"has {len(children)} <action> elements" if len(children) > 1
                else "has an empty <action>")
            raise ActrecogError(f"{path}: item {index} {what}; TestDetection label items "
                                f"name their action: {ACTION_ITEM_FORM}")
        action = children[0].text.strip()
        if action not in known:
            raise ActrecogError(f"{path}: item {index} names unknown action {action!r} "
                                f"(known: {', '.join(sorted(known))})")
        found.append((index, ActionInterval(pos, length, action)))
    ordered = sorted(found, key=lambda entry: (entry[1].pos, entry[0]))
    for (first_index, first), (second_index, second) in zip(ordered, ordered[1:]):
        if second.pos < first.end:
            raise ActrecogError(
                f"{path}: items {first_index} (pos {first.pos}, len {first.len}) and "
                f"{second_index} (pos {second.pos}, len {second.len}) overlap")
    return tuple(interval for _, interval in found)


def check_intervals(intervals: Tuple[Interval, ...], num_frames: int, path: str,
                    clip: bool = False, clip_flag: Optional[str] = "--clip-intervals"
                    ) -> Tuple[Tuple[Interval, ...], List[str]]:
    """Checks that every interval lies inside a sequence of ``num_frames`` frames.

    Args:
        intervals: as returned by :func:`parse_label_xml`.
        num_frames: N, frames in the sequence.
        path: the label file, for messages.
        clip: cut intervals that run past the last frame (dropping those that
            start after it) instead of failing.
        clip_flag: the calling tool's option that sets ``clip``, named in the
            message (None: the tool has none).

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
            hint = (f"use {clip_flag} to clip it" if clip_flag else
                    "the label file and the frames disagree")
            raise ActrecogError(f"{where} ({hint})")
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
    return parse_label_xml(_read_label_bytes(path), path)


def _read_label_bytes(path: str) -> bytes:
    try:
        return storage.read_bytes(path)
    except storage.io_errors() as error:
        reason = getattr(error, "message", None) or str(error)
        raise ActrecogError(f"{path}: cannot read label file ({reason})") from None


def read_action_label_file(path: str,
                           known_actions: Sequence[str]) -> Tuple[ActionInterval, ...]:
    """Reads and parses one TestDetection label file (local path or URI).

    Raises:
        ActrecogError: unreadable file, or see :func:`parse_action_label_xml`.
    """
    return parse_action_label_xml(_read_label_bytes(path), known_actions, path)


def _names_actions(data: bytes) -> bool:
    """Whether any item of a label file carries an ``<action>`` (False if unparsable:
    the label reader then reports the file)."""
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, ValueError, UnicodeError):
        return False
    return any(True for _ in root.iter(ACTION_TAG))


def truth_from_labels(path: str, sequence_dir: str, num_frames: int,
                      classes: Tuple[str, ...]) -> np.ndarray:
    """Per-frame classes from a label file.

    TestDetection files (a sequence whose parent folder is ``TestDetection``, or
    any file whose items carry ``<action>``) are read with
    :func:`parse_action_label_xml` (each item its action, no two
    items overlapping); other files take the sequence folder's name as the
    action of every item (:func:`parse_label_xml`).

    Returns:
        ``(N,)`` int64 class indices, no-action outside every item.

    Raises:
        ActrecogError: an item without an action where one is needed (naming the
            expected form), an action the model does not know, overlapping
            items, or an item past the last frame.
    """
    data = storage.read_bytes(path)
    actions = classes[:-1]
    parent = os.path.basename(os.path.dirname(os.path.normpath(sequence_dir)))
    if parent == DETECTION_SPLIT or _names_actions(data):
        items = parse_action_label_xml(data, actions, path)
        intervals = tuple(Interval(item.pos, item.len) for item in items)
        names = [item.action for item in items]
    else:
        intervals = parse_label_xml(data, path)
        folder_action = os.path.basename(os.path.normpath(sequence_dir))
        if folder_action not in actions:
            raise ActrecogError(f"{path}: the sequence folder names action "
                                f"{folder_action!r}, which the model does not know "
                                f"(classes: {', '.join(actions)})")
        names = [folder_action] * len(intervals)
    check_intervals(intervals, num_frames, path, clip_flag=None)  # detect.py has none
    truth = np.full(num_frames, len(classes) - 1, np.int64)
    for interval, name in zip(intervals, names):
        truth[interval.pos:interval.end] = classes.index(name)
    return truth
