"""The synthetic families behind one interface: ``FAMILIES[config.style]``.

A family is a module that draws the actions its own way and offers two functions:

- ``length_factor(action) -> float``: how long a performance of the action is
  relative to the mean (the plans use it);
- ``render_frames(config, subject_name, num_frames, intervals, actions, rng)``:
  yields ``(depth, confi, color)`` per frame - ``(H, W) uint16`` millimetres,
  ``(H, W) uint16`` IR return, ``(H, W, 3) uint8`` BGR - with ``actions[k]``
  performed during ``intervals[k]`` and no hand elsewhere.

Adding a family: one module with those two functions, one entry here and its name
in :data:`coreLib.synthetic.config.STYLES`.
"""

from typing import Callable, Dict, Iterator, NamedTuple

from coreLib.synthetic import pose, trajectory
from coreLib.synthetic.config import STYLES, SyntheticConfig


class Family(NamedTuple):
    """The two functions of a family module (see the module docstring)."""
    length_factor: Callable[[str], float]
    render_frames: Callable[..., Iterator[tuple]]


FAMILIES: Dict[str, Family] = {
    "pose": Family(pose.length_factor, pose.render_frames),
    "trajectory": Family(trajectory.length_factor, trajectory.render_frames),
}
assert tuple(FAMILIES) == STYLES, "every style a family, every family a style"


def family_of(config: SyntheticConfig) -> Family:
    """The family a config draws (its ``style``)."""
    return FAMILIES[config.style]
