"""Which action names a dataset's label files use, and what main.py says about them.

Every ``<subject>/<action>.xml`` label file makes ``<action>`` a class. A typo
(``ui-foo``) would silently become a class of its own, yet a user's own dataset
may use other names and a real subject may lack an action, so nothing is refused
by default: :func:`check_action_names` returns one warning line per kind of
doubt (names outside BII's 16, names only some subjects have), each naming the
files. ``--actions a,b,...`` pins the set: any other name is refused.
"""

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from coreLib.errors import ActrecogError

# The 16 actions of the BII dataset, sorted (the class order main.py uses).
BII_ACTIONS = ("asl-bathroom", "asl-blue", "asl-green", "asl-j", "asl-milk",
               "asl-scissors", "asl-where", "asl-yellow", "asl-you", "asl-z",
               "ui-circle", "ui-click", "ui-doubleclick", "ui-keyTap", "ui-screenTap",
               "ui-swipe")

# Files named in a warning per action name, at most (then "and N more").
FILES_NAMED = 3


@dataclass(frozen=True)
class LabelFile:
    """One label file of SRC: ``<split>/<subject>/<action>.xml``."""
    split: str
    subject: str
    action: str
    path: str


def subject_counts(files: Iterable[LabelFile]) -> Dict[str, int]:
    """Action name -> number of subjects (Train and Test) with its label file."""
    subjects: Dict[str, set] = {}
    for label_file in files:
        subjects.setdefault(label_file.action, set()).add((label_file.split,
                                                           label_file.subject))
    return {action: len(found) for action, found in sorted(subjects.items())}


def _named(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:FILES_NAMED])
    more = len(paths) - FILES_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def _files_by_action(files: Sequence[LabelFile]) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for label_file in files:
        found.setdefault(label_file.action, []).append(label_file.path)
    return found


def _check_pinned(files: Sequence[LabelFile], pinned: Sequence[str]) -> None:
    """Refuses a name outside ``--actions`` and a pinned name without a Train file."""
    allowed = set(pinned)
    for label_file in files:
        if label_file.action not in allowed:
            raise ActrecogError(f"{label_file.path}: action {label_file.action!r} is not "
                                f"one of --actions ({', '.join(pinned)})")
    in_train = {label_file.action for label_file in files if label_file.split == "Train"}
    for name in pinned:
        if name not in in_train:
            raise ActrecogError(f"--actions: {name!r} has no label file under Train "
                                f"(no <subject>/{name}.xml)")


def check_action_names(files: Sequence[LabelFile],
                       pinned: Optional[Sequence[str]] = None) -> Tuple[str, ...]:
    """The warnings about a dataset's action names (none when all is as BII's).

    Args:
        files: every label file of SRC/Train and SRC/Test.
        pinned: ``--actions``: the only names allowed (None: any name).

    Returns:
        Up to two lines: the names outside BII's 16 (not when the set is pinned),
        and the names that only some subjects have; each names the files.

    Raises:
        ActrecogError: with ``pinned``, a label file of another action (naming
            it), or a pinned name that no Train subject has.
    """
    if pinned is not None:
        _check_pinned(files, pinned)
    by_action = _files_by_action(files)
    warnings = []
    if pinned is None:
        unknown = [name for name in sorted(by_action) if name not in BII_ACTIONS]
        if unknown:
            listed = "; ".join(f"{name!r} ({_named(by_action[name])})" for name in unknown)
            warnings.append(f"action names outside BII's 16, each made a class: {listed} "
                            f"(pin the set with --actions if they are meant)")
    counts = subject_counts(files)
    all_subjects = len({(label_file.split, label_file.subject) for label_file in files})
    partial = [name for name, count in counts.items() if count < all_subjects]
    if partial:
        listed = "; ".join(f"{name!r} {counts[name]} of {all_subjects} subjects "
                           f"({_named(by_action[name])})" for name in partial)
        warnings.append(f"actions that only some subjects have: {listed}")
    return tuple(warnings)


def class_summary(counts: Dict[str, int], no_action: str) -> str:
    """``classes: asl-blue (3 subjects), ui-click (2 subjects), no-action``."""
    parts = [f"{name} ({count} subject{'s' if count != 1 else ''})"
             for name, count in counts.items()]
    return "classes: " + ", ".join(parts + [no_action])
