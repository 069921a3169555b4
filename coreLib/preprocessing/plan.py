"""main.py's phase 1b: the plan - classes, L, and every split's window list (no pixels).

:func:`make_plan` discovers the sequences (:mod:`.discovery`), chooses L, the
classes (Train's actions, sorted, then ``no-action``) and the Eval subjects, and
builds every split's windows as parallel index arrays; the Train list is balanced
and shuffled with the seed. Every check that needs no pixels fails here, before
anything is written. :meth:`Plan.run_key` fingerprints everything the outputs
depend on: a killed run's files are reused only under the same key.
"""

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from coreLib import storage
from coreLib.data import action_sets, frames, manifest, windows
from coreLib.data import hand_crop as hand_crop_lib
from coreLib.errors import ActrecogError
from coreLib.preprocessing import augment
from coreLib.preprocessing.discovery import (Sequence, check_dest_outside_src, discover,
                                             read_sequence)

# Bumped when the outputs of the same arguments change (old runs' files are not reused).
_STATE_VERSION = 1


@dataclass(frozen=True)
class PreprocessConfig:
    """Arguments of main.py.

    Attributes:
        src: dataset folder with ``Train/`` and ``Test/`` (local path or URI).
        dest: output folder (local path or URI); results go to ``DEST/DataSet``.
        seq_len: window length L; None = smallest ``len`` over all label files.
        image_dim: side D of the stored square frames.
        modality: ``color``, ``depth`` or ``confi``.
        eval_subjects: Train subjects whose windows form the Eval split.
        batch_size: the Train list is cut to a multiple of it.
        shard_size: windows per TFRecord shard.
        seed: seed for choosing kept no-action windows and the Train order.
        offline_augment: store 32 rotated/flipped copies per Train window.
        clip_intervals: clip label intervals past the last frame (with a warning)
            instead of failing.
        workers: decoding processes.
        frames: ``full`` (whole frames resized) or ``hand`` (hand-centred
            squares, :mod:`coreLib.data.hand_crop`; not with offline_augment,
            whose 32 copies are 1.0.4's full frames).
        hand_crop: the hand tracker's settings (with ``hand``).
        actions: ``--actions``: the only action names allowed (None: any, with a
            warning for names outside BII's 16 or only some subjects have).
    """
    src: str
    dest: str
    seq_len: Optional[int] = None
    image_dim: int = 64
    modality: str = "color"
    eval_subjects: Tuple[str, ...] = ("LN",)
    batch_size: int = 128
    shard_size: int = 512
    seed: int = 0
    offline_augment: bool = False
    clip_intervals: bool = False
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    frames: str = hand_crop_lib.FULL_FRAMES
    hand_crop: hand_crop_lib.HandCropConfig = hand_crop_lib.HandCropConfig()
    actions: Optional[Tuple[str, ...]] = None

    def __post_init__(self):
        object.__setattr__(self, "eval_subjects", tuple(self.eval_subjects))
        if self.actions is not None:
            object.__setattr__(self, "actions", tuple(self.actions))
        if not self.src or not self.dest:
            raise ValueError(f"src and dest must be set, got {self.src!r}, {self.dest!r}")
        if self.seq_len is not None and self.seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {self.seq_len}")
        for name in ("image_dim", "batch_size", "shard_size", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.modality not in frames.MODALITIES:
            raise ValueError(f"modality must be one of {sorted(frames.MODALITIES)}, "
                             f"got {self.modality!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.frames not in hand_crop_lib.FRAME_MODES:
            raise ValueError(f"frames must be one of {', '.join(hand_crop_lib.FRAME_MODES)}, "
                             f"got {self.frames!r}")
        if self.frames == hand_crop_lib.HAND_FRAMES and self.offline_augment:
            raise ValueError("--frames hand and --offline-augment: the stored copies "
                             "are 1.0.4's full frames (use --frames full)")

    @property
    def tracks_hand(self) -> bool:
        """Whether the frames are hand-centred (``frames == "hand"``)."""
        return self.frames == hand_crop_lib.HAND_FRAMES

    @property
    def active_hand_crop(self) -> Optional[hand_crop_lib.HandCropConfig]:
        """The tracker's settings when the frames are hand-centred, else None."""
        return self.hand_crop if self.tracks_hand else None

    @property
    def frame_channels(self) -> int:
        """Channels of a stored frame: the modality's, plus the path channels of
        hand-centred frames."""
        return hand_crop_lib.frame_channels(frames.modality_spec(self.modality).channels,
                                            self.active_hand_crop)


@dataclass(frozen=True)
class WindowList:
    """The windows of one split, as parallel arrays (no pixels).

    Attributes:
        sequence: ``(W,)`` int32 index into the plan's sequences.
        start: ``(W,)`` int32 first frame.
        label: ``(W,)`` int32 class index.
        variant: ``(W,)`` int32 index into ``augment.variants()`` (0 = none).
    """
    sequence: np.ndarray
    start: np.ndarray
    label: np.ndarray
    variant: np.ndarray

    def __len__(self) -> int:
        return len(self.start)

    def take(self, indices: np.ndarray) -> "WindowList":
        return WindowList(self.sequence[indices], self.start[indices],
                          self.label[indices], self.variant[indices])


@dataclass(frozen=True)
class Plan:
    """Everything phase 1 decides: classes, L, sequences and window lists.

    Attributes:
        config: the run's arguments.
        classes: action names under Train, sorted, then ``no-action``.
        seq_len: L.
        sequences: every sequence in discovery order (Train, then Test;
            subjects and actions sorted).
        split_sequences: split name -> indices into ``sequences``.
        windows: split name -> its windows in their final order.
        warnings: messages about action names and clipped intervals.
        class_subjects: action name -> subjects (Train and Test) that have it.
    """
    config: PreprocessConfig
    classes: Tuple[str, ...]
    seq_len: int
    sequences: Tuple[Sequence, ...]
    split_sequences: Dict[str, Tuple[int, ...]]
    windows: Dict[str, WindowList]
    warnings: Tuple[str, ...]
    class_subjects: Dict[str, int] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def run_key(self) -> str:
        """sha256 of everything the outputs depend on (and of DEST).

        A killed run's cache files and shards are reused only by a run with the
        same key, so a changed argument or label file never mixes outputs.
        """
        config = self.config
        value = {
            "version": _STATE_VERSION, "src": storage.absolute(config.src),
            "dest": storage.absolute(config.dest), "seq_len": self.seq_len,
            "image_dim": config.image_dim, "modality": config.modality,
            "eval_subjects": list(config.eval_subjects), "batch_size": config.batch_size,
            "shard_size": config.shard_size, "seed": config.seed,
            "offline_augment": config.offline_augment, "classes": list(self.classes),
            "sequences": [[s.source_split, s.subject, s.action, s.num_frames,
                           [[i.pos, i.len] for i in s.intervals]] for s in self.sequences],
        }
        if config.tracks_hand:  # (full frames keep 1.0.x's keys)
            value["hand_crop"] = dataclasses.asdict(config.hand_crop)
        return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _select_train(candidates: WindowList, num_classes: int, no_action: int,
                  batch_size: int, seed: int) -> Tuple[WindowList, int]:
    """Balancing and trimming of the Train list, then its shuffled order.

    ``no-action`` windows are cut to (action windows) // (classes), the kept ones
    drawn with ``seed``; the list is cut to a multiple of ``batch_size`` and
    shuffled (one permutation does both: its first ``k * batch_size`` entries).

    Returns:
        ``(windows in their final order, number of windows after balancing)``.
    """
    rng = np.random.default_rng(seed)
    is_action = candidates.label != no_action
    action_indices = np.flatnonzero(is_action)
    no_action_indices = np.flatnonzero(~is_action)
    keep = min(len(no_action_indices), len(action_indices) // num_classes)
    chosen = np.sort(rng.choice(len(no_action_indices), size=keep, replace=False))
    selected = np.sort(np.concatenate([action_indices, no_action_indices[chosen]]))
    total = len(selected) // batch_size * batch_size
    order = rng.permutation(len(selected))[:total]
    return candidates.take(selected[order]), len(selected)


def _split_windows(plan_sequences, indices, classes, seq_len, augmented) -> WindowList:
    """All windows of some sequences in order; with ``augmented``, 32 copies each."""
    parts = {"sequence": [], "start": [], "label": []}
    for index in indices:
        sequence = plan_sequences[index]
        is_action = windows.window_is_action(sequence.intervals, sequence.num_frames, seq_len)
        parts["sequence"].append(np.full(len(is_action), index, np.int32))
        parts["start"].append(windows.window_starts(sequence.num_frames, seq_len)
                              .astype(np.int32))
        parts["label"].append(np.where(is_action, classes.index(sequence.action),
                                       len(classes) - 1).astype(np.int32))
    arrays = {key: (np.concatenate(value) if value else np.zeros(0, np.int32))
              for key, value in parts.items()}
    variant = np.zeros(len(arrays["start"]), np.int32)
    if augmented:
        # Each window followed by its 32 copies, in augment.variants() order.
        copies = augment.NUM_VARIANTS
        arrays = {key: np.repeat(value, copies) for key, value in arrays.items()}
        variant = np.tile(np.arange(copies, dtype=np.int32), len(variant))
    return WindowList(arrays["sequence"], arrays["start"], arrays["label"], variant)


def _window_length(config: PreprocessConfig, sequences) -> int:
    """L: ``--seq-len``, or the shortest label ``len``; no sequence may be shorter."""
    seq_len = config.seq_len or min(sequence.shortest_len for sequence in sequences)
    for sequence in sequences:
        if sequence.num_frames < seq_len:
            source = "--seq-len" if config.seq_len else "the shortest label len"
            raise ActrecogError(f"{sequence.path}: {sequence.num_frames} frames, fewer than "
                                f"the window length L={seq_len} ({source})")
    return seq_len


def _classes(config: PreprocessConfig, sequences) -> Tuple[str, ...]:
    """Train's actions sorted, then no-action; checks the Eval subjects and that
    every Test action is a Train action."""
    train_subjects = sorted({s.subject for s in sequences if s.source_split == "Train"})
    for name in config.eval_subjects:
        if name not in train_subjects:
            raise ActrecogError(f"--eval-subjects: {name!r} is not a Train subject "
                                f"(Train subjects: {', '.join(train_subjects)})")
    actions = sorted({s.action for s in sequences if s.source_split == "Train"})
    if manifest.NO_ACTION in actions:
        raise ActrecogError(f"{config.src}: an action folder is named "
                            f"{manifest.NO_ACTION!r}, the name of the no-action class")
    classes = tuple(actions) + (manifest.NO_ACTION,)
    for sequence in sequences:
        if sequence.action not in classes:
            raise ActrecogError(f"{sequence.label_path}: action {sequence.action!r} does "
                                f"not occur under Train, so it has no class")
    return classes


def make_plan(config: PreprocessConfig) -> Plan:
    """Phase 1: discovery, label files, L, classes and every split's windows.

    Reads the folder listings and label files only (no pixels).

    Raises:
        ActrecogError: any problem found without decoding a frame (see
            :func:`discover`, coreLib.data.labels, frames.count_frames), L larger than a
            sequence, an ``eval_subjects`` name that is not a Train subject, a Test
            action unknown to Train, or a Train split smaller than one batch.
    """
    check_dest_outside_src(config.src, config.dest)
    entries = discover(config.src)
    label_files = [action_sets.LabelFile(split, subject, action, label_path)
                   for split, subject, action, _, label_path in entries]
    warnings: List[str] = list(action_sets.check_action_names(label_files, config.actions))
    sequences = tuple(read_sequence(entry, config.modality, config.clip_intervals, warnings)
                      for entry in entries)

    seq_len = _window_length(config, sequences)
    classes = _classes(config, sequences)
    split_sequences = {
        "Train": tuple(i for i, s in enumerate(sequences) if s.source_split == "Train"
                       and s.subject not in config.eval_subjects),
        "Eval": tuple(i for i, s in enumerate(sequences) if s.source_split == "Train"
                      and s.subject in config.eval_subjects),
        "Test": tuple(i for i, s in enumerate(sequences) if s.source_split == "Test"),
    }
    train_candidates = _split_windows(sequences, split_sequences["Train"], classes, seq_len,
                                      config.offline_augment)
    train_windows, num_balanced = _select_train(train_candidates, len(classes),
                                                len(classes) - 1, config.batch_size,
                                                config.seed)
    split_windows = {
        "Train": train_windows,
        "Eval": _split_windows(sequences, split_sequences["Eval"], classes, seq_len, False),
        "Test": _split_windows(sequences, split_sequences["Test"], classes, seq_len, False),
    }
    if len(train_windows) == 0:
        raise ActrecogError(
            f"--batch-size: the Train split has {num_balanced} windows after balancing "
            f"no-action, fewer than one batch of {config.batch_size}")
    return Plan(config, classes, seq_len, sequences, split_sequences, split_windows,
                tuple(warnings), action_sets.subject_counts(label_files))
