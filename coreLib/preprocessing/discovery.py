"""main.py's phase 1a: the sequences of a BII-layout SRC, their frame counts and labels.

Reads folder listings and label files only (no pixels). Every problem found here
(a missing split, a label file without its frames, a frame missing in the chosen
modality, a bad interval) is an ActrecogError naming the file.
"""

from dataclasses import dataclass
from typing import List, Tuple

from coreLib import storage
from coreLib.data import frames, labels
from coreLib.errors import ActrecogError

SOURCE_SPLITS = ("Train", "Test")
LABEL_SUFFIX = ".xml"


@dataclass(frozen=True)
class Sequence:
    """One recorded sequence (one label file and its frame folder).

    Attributes:
        source_split: ``Train`` or ``Test`` (the SRC folder it sits in).
        subject, action: its subject and action names.
        path: the sequence folder, absolute (what the JSON lists point at).
        label_path: its ``<action>.xml``.
        num_frames: N.
        intervals: labelled intervals inside ``[0, N)`` (clipped if asked).
        shortest_len: the smallest ``len`` written in the label file.
    """
    source_split: str
    subject: str
    action: str
    path: str
    label_path: str
    num_frames: int
    intervals: Tuple[labels.Interval, ...]
    shortest_len: int


def _subfolders_and_files(folder: str) -> Tuple[List[str], List[str]]:
    """``(subfolder names, file names)`` of a folder."""
    folders, files = [], []
    for name in storage.listdir(folder):
        (folders if storage.isdir(storage.join(folder, name)) else files).append(name)
    return folders, files


def _discover_subject(source_split: str, subject_dir: str, subject: str) -> List[Tuple]:
    """(source_split, subject, action, folder, label file) of one subject, sorted."""
    folders, files = _subfolders_and_files(subject_dir)
    actions = sorted(name[:-len(LABEL_SUFFIX)] for name in files
                     if name.endswith(LABEL_SUFFIX) and len(name) > len(LABEL_SUFFIX))
    if not actions:
        raise ActrecogError(f"{subject_dir}: subject folder has no label files "
                            f"(<action>{LABEL_SUFFIX})")
    for action in actions:
        if action not in folders:
            raise ActrecogError(f"{storage.join(subject_dir, action + LABEL_SUFFIX)}: "
                                f"label file without its frame folder {action}/")
    for folder in folders:
        if folder not in actions:
            raise ActrecogError(f"{storage.join(subject_dir, folder)}: frame folder "
                                f"without its label file {folder}{LABEL_SUFFIX}")
    return [(source_split, subject, action, storage.join(subject_dir, action),
             storage.join(subject_dir, action + LABEL_SUFFIX)) for action in actions]


def check_dest_outside_src(src: str, dest: str) -> None:
    """Refuses a DEST below SRC (SRC itself is fine): DEST/DataSet would land in the
    source tree, and inside Train/ or Test/ it would break every later run."""
    if storage.is_within(dest, src) and not storage.is_within(src, dest):
        raise ActrecogError(f"{dest}: DEST lies inside SRC {src} - the DataSet would be "
                            f"written into the source tree; choose a folder outside "
                            f"SRC (or SRC itself)")


def discover(src: str) -> List[Tuple]:
    """Every sequence under ``SRC/Train`` and ``SRC/Test``, in a fixed order.

    Returns:
        ``(source_split, subject, action, sequence folder, label file)`` tuples:
        Train before Test, subjects and actions sorted.

    Raises:
        ActrecogError: SRC or a split folder missing, a split without subject
            folders, a subject without label files, a label file without its frame
            folder or the reverse.
    """
    if not storage.isdir(src):
        raise ActrecogError(f"{src}: source folder not found")
    found = []
    for source_split in SOURCE_SPLITS:
        split_dir = storage.join(src, source_split)
        if not storage.isdir(split_dir):
            raise ActrecogError(f"{src}: no {source_split}/ folder (expected "
                                f"{'/ and '.join(SOURCE_SPLITS)}/)")
        subjects, _ = _subfolders_and_files(split_dir)
        if not subjects:
            raise ActrecogError(f"{split_dir}: no subject folders")
        for subject in subjects:
            found.extend(_discover_subject(source_split, storage.join(split_dir, subject),
                                           subject))
    return found


def _count_frames(sequence_dir: str, modality: str) -> int:
    """N by the colour frames (as the original); other modalities must match."""
    num_frames = frames.count_frames(sequence_dir, frames.COUNTING_MODALITY)
    if modality != frames.COUNTING_MODALITY:
        indices = frames.list_frame_indices(sequence_dir, modality)
        present = set(indices)
        for index in range(num_frames):
            if index not in present:
                raise ActrecogError(f"{frames.frame_path(sequence_dir, modality, index)}: "
                                    f"frame missing")
    return num_frames


def read_sequence(entry: Tuple, modality: str, clip: bool, warnings: List[str]) -> Sequence:
    """The :class:`Sequence` of one discovered entry (frames counted, labels checked;
    messages about clipped intervals appended to ``warnings``)."""
    source_split, subject, action, folder, label_path = entry
    num_frames = _count_frames(folder, modality)
    raw = labels.read_label_file(label_path)
    intervals, messages = labels.check_intervals(raw, num_frames, label_path, clip)
    warnings.extend(messages)
    return Sequence(source_split, subject, action, storage.absolute(folder), label_path,
                    num_frames, intervals, min(interval.len for interval in raw))
