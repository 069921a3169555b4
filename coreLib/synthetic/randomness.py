"""Deterministic randomness of the synthetic datasets, and the subjects drawn from it.

Every random choice draws from a generator seeded by the config's seed and names
(split, subject, action, sequence), never by ``hash()`` or by the order work is
done in, so the bytes do not depend on the number of worker processes.
"""

import zlib
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple, TypeVar

import numpy as np


def name_key(name: str) -> int:
    """A stable integer of a name (CRC-32 of its UTF-8 bytes)."""
    return zlib.crc32(name.encode("utf-8"))


Entry = TypeVar("Entry")


def by_action(table: Dict[str, Entry], action: str, known: Sequence[str]) -> Entry:
    """``table[action]``; for an action outside the table (a user may name any), the
    entry of one of the ``known`` actions, picked by the name's :func:`name_key`."""
    if action in table:
        return table[action]
    return table[known[name_key(action) % len(known)]]


def seeded_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends only on the seed and the names (not on hash())."""
    return np.random.default_rng([seed] + [name_key(name) for name in names])


@dataclass(frozen=True)


class Subject:
    """How one subject differs from the others (derived from name and seed)."""
    speed: float                 # > 1: slower, longer performances
    hand_scale: float            # hand size, +-15 %
    offset: Tuple[float, float]  # hand position, fraction of (width, height)
    angle: float                 # hand turn (degrees)
    amplitude: float             # motion size factor
    skin: Tuple[float, float, float]        # BGR
    background: Tuple[float, float, float]  # BGR tint
    wall_mm: float               # background distance at the frame's centre
    wall_tilt_mm: float          # background distance change top to bottom
    clutter: Tuple[Tuple[float, float, float, float, float], ...]  # x, y, w, h, mm
    depth_dropout: float         # fraction of depth pixels lost (noise)
    color_speckle: float         # fraction of colour pixels disturbed (noise)


def subject(seed: int, name: str) -> Subject:
    """How subject ``name`` looks and moves (from its name and the seed only)."""
    draw = seeded_rng(seed, "subject", name)
    light, dark = np.array([175.0, 195.0, 235.0]), np.array([70.0, 105.0, 160.0])
    tone = draw.uniform(0, 1)
    clutter = tuple(
        (float(draw.uniform(0.05, 0.8)), float(draw.uniform(0.05, 0.8)),
         float(draw.uniform(0.1, 0.25)), float(draw.uniform(0.1, 0.25)),
         float(draw.uniform(1200, 1600)))
        for _ in range(int(draw.integers(1, 4))))
    return Subject(
        speed=float(draw.uniform(0.85, 1.2)),
        hand_scale=float(draw.uniform(0.87, 1.15)),
        offset=(float(draw.uniform(-0.04, 0.04)), float(draw.uniform(-0.04, 0.04))),
        angle=float(draw.uniform(-5, 5)),
        amplitude=float(draw.uniform(0.9, 1.1)),
        skin=tuple(float(value) for value in light + (dark - light) * tone),
        background=tuple(float(value) for value in
                         draw.uniform(70, 120) + draw.uniform(-20, 20, 3)),
        wall_mm=float(draw.uniform(1800, 2500)),
        wall_tilt_mm=float(draw.uniform(200, 500)),
        clutter=clutter,
        depth_dropout=float(draw.uniform(0.002, 0.015)),
        color_speckle=float(draw.uniform(0.002, 0.015)),
    )
