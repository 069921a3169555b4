"""The ``trajectory`` family of the synthetic dataset: one hand, sixteen motions.

In the ``pose`` family (:mod:`coreLib.synthetic.pose`) every action has its own hand
pose, so one frame nearly tells the class. Here the hand looks the same in every


class - an open hand, four fingers spread and the thumb out to the left, as seen
by a head-mounted camera - and only its *motion* tells the action apart, as in
the real gestures defined by motion (ui-swipe, ui-circle, asl-j, asl-z, ...).

The motions (:data:`MOTIONS`), each over one performance:

=============== ====================================================================
ui-swipe        stroke to the right
asl-bathroom    stroke to the left
asl-blue        stroke up
asl-green       stroke down
ui-circle       one circle, clockwise on screen (from the top towards the right)
asl-yellow      one circle, counter-clockwise on screen
ui-screenTap    push towards the camera (the hand ends 160 mm nearer than its rest)
asl-milk        pull away from the camera (the reverse)
ui-click        one quick tap towards the camera and back
ui-doubleclick  two taps
asl-where       shake side to side, two cycles
ui-keyTap       nod up and down, two cycles
asl-z           zig-zag to the right: four diagonal strokes, down, up, down, up
asl-scissors    twist back and forth about the camera's axis, two cycles
asl-j           a quarter turn clockwise about the camera's axis
asl-you         stroke down while pushing towards the camera
=============== ====================================================================

They are built to stay apart in the windows training sees: L = 6 frames (the
shortest performance) resized to 32x32, labelled with the action when 3 of the 6
frames are inside the performance. So every motion shows its kind from its first
frames to its last (no resting phase), directions that must differ are 90 degrees
apart (the 1.0.4 augmentation rotates windows by up to 35 degrees), and depth
motions differ in sign and rate. Motion in time is not reversed by augmentation.

What a flip does (expected, not a bug): a left-right flip - a left-handed
performer - turns ui-swipe into asl-bathroom (and back), ui-circle into asl-yellow,
asl-z into a zig-zag to the left and asl-j into a counter-clockwise turn (neither a
class), and the hand into a left hand; an up-down flip turns asl-blue into
asl-green, ui-circle into asl-yellow, asl-j into a counter-clockwise turn and
asl-you into a stroke up while pushing; both flips (a half turn) swap the strokes
in pairs and keep the senses of rotation. The others (pushes, taps, shakes, nods,
the twist) survive every flip. Training with flips therefore teaches some classes
each other's motions: the augmentation choice matters on this family.

Subjects differ in hand size, resting place, tilt of the path, size of the motion,
speed (performance length, through :func:`coreLib.synthetic.plans.plan_sequence`), hand
distance, background distance, sensor noise, skin and background tone; all derived
from the subject name and the seed. Depth, confi and colour are drawn from the same
geometry: near depth and a strong IR return on the hand, skin tone in colour.
"""

import math
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import numpy as np

from coreLib.synthetic import drawing
from coreLib.synthetic.config import ACTIONS, SyntheticConfig
from coreLib.synthetic.drawing import THUMB_OUT, together
from coreLib.synthetic.randomness import Subject, by_action, seeded_rng, subject

# Path sizes in fractions of the frame height (x right, y up), so a path keeps its
# shape whatever the aspect ratio; depth offsets in millimetres (negative: nearer).
_STROKE_HALF = 0.28       # horizontal strokes and the zig-zag run +-0.28 H
_VERTICAL_HALF = 0.17     # vertical strokes: less room above and below
_CIRCLE_RADIUS = 0.17
_SHAKE = 0.13
_NOD = 0.09
_ZIGZAG_HEIGHT = 0.09
_PUSH_FROM_MM, _PUSH_TO_MM = 130.0, -160.0
_TAP_MM = 110.0
_TWIST_DEGREES = 35.0
_TURN_DEGREES = 90.0
_HAND_UNIT = 0.095        # hand units per frame height for an unscaled hand at rest
_REST_Y = 0.55            # the palm rests a little below the centre: fingers go up


@dataclass(frozen=True)


class Trajectory:
    """One motion of the trajectory family.

    Attributes:
        kind: the path's name, see :func:`path`.
        description: what the hand does, in words.
        length_factor: relative length of a performance (a circle takes longer
            than a tap).
    """
    kind: str
    description: str
    length_factor: float = 1.0


MOTIONS: Dict[str, Trajectory] = {
    "ui-swipe": Trajectory("stroke_right", "stroke to the right"),
    "asl-bathroom": Trajectory("stroke_left", "stroke to the left"),
    "asl-blue": Trajectory("stroke_up", "stroke up", 0.9),
    "asl-green": Trajectory("stroke_down", "stroke down", 0.9),
    "ui-circle": Trajectory("circle_cw", "one circle clockwise on screen", 1.3),
    "asl-yellow": Trajectory("circle_ccw", "one circle counter-clockwise on screen", 1.3),
    "ui-screenTap": Trajectory("push", "push towards the camera"),
    "asl-milk": Trajectory("pull", "pull away from the camera"),
    "ui-click": Trajectory("tap", "one tap towards the camera and back", 0.7),
    "ui-doubleclick": Trajectory("double_tap", "two taps towards the camera", 1.0),
    "asl-where": Trajectory("shake", "shake side to side, two cycles", 1.1),
    "ui-keyTap": Trajectory("nod", "nod up and down, two cycles", 1.1),
    "asl-z": Trajectory("zigzag", "zig-zag to the right, four diagonal strokes", 1.3),
    "asl-scissors": Trajectory("twist", "twist back and forth, two cycles", 1.1),
    "asl-j": Trajectory("turn", "a quarter turn clockwise", 1.0),
    "asl-you": Trajectory("dive", "stroke down while pushing towards the camera", 1.0),
}


def motion_of(action: str) -> Trajectory:
    """The motion of an action (a known one, or one picked by the name's hash)."""
    return by_action(MOTIONS, action, ACTIONS)


def _zigzag(phase: float) -> float:
    """+1 -> -1 -> +1 -> -1 -> +1 in four straight segments over the phase."""
    position = min(4 * phase, 4.0)
    segment = min(int(position), 3)
    along = position - segment
    return 1 - 2 * along if segment % 2 == 0 else -1 + 2 * along


def path(kind: str, phase: float) -> Tuple[float, float, float, float]:
    """Where the hand is at ``phase`` in [0, 1) of a performance, from its rest.

    Returns:
        ``(x, y, depth_mm, angle)``: position in frame heights (x right, y up),
        distance change in millimetres (negative: nearer the camera), in-plane turn
        in degrees (counter-clockwise on screen).
    """
    turn = 2 * math.pi * phase
    if kind == "stroke_right":
        return (-_STROKE_HALF + 2 * _STROKE_HALF * phase, 0.0, 0.0, 0.0)
    if kind == "stroke_left":
        return (_STROKE_HALF - 2 * _STROKE_HALF * phase, 0.0, 0.0, 0.0)
    if kind == "stroke_up":
        return (0.0, -_VERTICAL_HALF + 2 * _VERTICAL_HALF * phase, 0.0, 0.0)
    if kind == "stroke_down":
        return (0.0, _VERTICAL_HALF - 2 * _VERTICAL_HALF * phase, 0.0, 0.0)
    if kind == "circle_cw":  # top, right, bottom, left: clockwise with y up
        return (_CIRCLE_RADIUS * math.sin(turn), _CIRCLE_RADIUS * math.cos(turn), 0.0, 0.0)
    if kind == "circle_ccw":
        return (-_CIRCLE_RADIUS * math.sin(turn), _CIRCLE_RADIUS * math.cos(turn), 0.0, 0.0)
    if kind == "push":
        return (0.0, 0.0, _PUSH_FROM_MM + (_PUSH_TO_MM - _PUSH_FROM_MM) * phase, 0.0)
    if kind == "pull":
        return (0.0, 0.0, _PUSH_TO_MM + (_PUSH_FROM_MM - _PUSH_TO_MM) * phase, 0.0)
    if kind == "tap":
        return (0.0, 0.0, -_TAP_MM * math.sin(math.pi * phase), 0.0)
    if kind == "double_tap":
        return (0.0, 0.0, -_TAP_MM * abs(math.sin(turn)), 0.0)
    if kind == "shake":
        return (_SHAKE * math.sin(2 * turn), 0.0, 0.0, 0.0)
    if kind == "nod":
        return (0.0, _NOD * math.sin(2 * turn), 0.0, 0.0)
    if kind == "zigzag":
        return (-_STROKE_HALF + 2 * _STROKE_HALF * phase, _ZIGZAG_HEIGHT * _zigzag(phase),
                0.0, 0.0)
    if kind == "twist":
        return (0.0, 0.0, 0.0, _TWIST_DEGREES * math.sin(2 * turn))
    if kind == "turn":
        return (0.0, 0.0, 0.0, _TURN_DEGREES * (0.5 - phase))
    if kind == "dive":
        return (0.0, _VERTICAL_HALF - 2 * _VERTICAL_HALF * phase,
                _PUSH_FROM_MM + (_PUSH_TO_MM - _PUSH_FROM_MM) * phase, 0.0)
    raise ValueError(f"unknown trajectory {kind!r}")


# The one hand of the family: palm, four spread fingers, the thumb to the left.
_PALM = (1.0, 1.1)
_FINGERS = together((1.5, 1.75, 1.7, 1.4), 0.42, 5.0) + (THUMB_OUT,)


@dataclass(frozen=True)


class TrajectorySubject:
    """How one subject performs the motions (besides the speed, hand size, skin,
    background and noise of its :class:`coreLib.synthetic.randomness.Subject`).

    Attributes:
        rest: where the palm rests, fractions of (width, height) from the centre.
        path_tilt: degrees every path is turned (counter-clockwise).
        hand_tilt: degrees the hand is turned.
        path_scale: size of the motions.
        rest_mm: hand distance at rest.
    """
    rest: Tuple[float, float]
    path_tilt: float
    hand_tilt: float
    path_scale: float
    rest_mm: float


def trajectory_subject(seed: int, name: str) -> TrajectorySubject:
    """The subject's motion habits (from its name and the seed only)."""
    draw = seeded_rng(seed, "trajectory-subject", name)
    return TrajectorySubject(
        rest=(float(draw.uniform(-0.07, 0.07)), float(draw.uniform(-0.05, 0.05))),
        path_tilt=float(draw.uniform(-12, 12)),
        hand_tilt=float(draw.uniform(-8, 8)),
        path_scale=float(draw.uniform(0.85, 1.15)),
        rest_mm=float(draw.uniform(560, 660)))


def hand_pose(config, person, habits: TrajectorySubject, performance: Dict[str, float],
              motion: Trajectory, phase: float) -> Tuple[float, float, float, float, float]:
    """Where and how large the hand is drawn at ``phase`` of a performance.

    Returns:
        ``(center_x, center_y, unit, angle, distance)``: palm centre in pixels,
        pixels per hand unit, the hand's turn in degrees (counter-clockwise on
        screen) and its distance in millimetres.
    """
    x, y, depth_mm, angle = path(motion.kind, phase)
    scale = habits.path_scale * performance["path_scale"]
    tilt = math.radians(habits.path_tilt + performance["tilt"])
    x, y = x * scale, y * scale
    x, y = x * math.cos(tilt) - y * math.sin(tilt), x * math.sin(tilt) + y * math.cos(tilt)
    distance = habits.rest_mm + performance["depth"] + depth_mm
    if config.hand_size == "real":
        return _real_pose(config, person, habits, performance, (x, y, distance, angle))
    unit = (_HAND_UNIT * config.height * config.hand_scale * person.hand_scale
            * performance["size"] * drawing.REFERENCE_DISTANCE_MM / distance)
    center_x = config.width * (0.5 + habits.rest[0] + performance["dx"]) + x * config.height
    center_y = config.height * (_REST_Y + habits.rest[1] + performance["dy"]) - y * config.height
    # As in the pose family: a larger hand sits lower, so its fingertips stay inside.
    center_y += drawing.SCALED_HAND_DROP * (config.hand_scale - 1) * _HAND_UNIT * config.height
    return center_x, center_y, unit, habits.hand_tilt + performance["tilt"] + angle, distance


def _real_pose(config, person, habits: TrajectorySubject, performance: Dict[str, float],
               where: Tuple[float, float, float, float]):
    """:func:`hand_pose` through the ``real`` camera model: the hand at arm's length,
    its rest spread wider over the view, the path measured in hand units (the
    large drawing's path over its unit, ``_HAND_UNIT``) so that it keeps its size
    relative to the hand and grows as the hand comes nearer."""
    x, y, distance, angle = where
    distance -= drawing.REAL_ARM_SHIFT_MM
    path_unit = drawing.real_hand_unit(config, distance)
    unit = path_unit * person.hand_scale * performance["size"]
    spread = drawing.REAL_POSITION_SPREAD
    center_x = (config.width * (0.5 + spread * (habits.rest[0] + performance["dx"]))
                + x / _HAND_UNIT * path_unit)
    center_y = (config.height * (_REST_Y + spread * (habits.rest[1] + performance["dy"]))
                - y / _HAND_UNIT * path_unit)
    return center_x, center_y, unit, habits.hand_tilt + performance["tilt"] + angle, distance


def draw_hand(images, person: Subject, center_x: float, center_y: float, unit: float,
              angle_degrees: float, distance: float) -> None:
    """Draws the family's hand into ``(depth, confi, color)`` in place."""
    to_image, paint = drawing.hand_canvas(images, center_x, center_y, unit,
                                          math.radians(angle_degrees))
    drawing.draw_fingers(to_image, paint, _FINGERS,
                         drawing.hand_values(person, distance + 15, 1.06), unit)
    drawing.draw_palm(to_image, paint, _PALM, drawing.hand_values(person, distance, 1.0),
                      unit, -angle_degrees)


def length_factor(action: str) -> float:
    """How long a performance of ``action`` is relative to the mean."""
    return motion_of(action).length_factor


def render_frames(config: SyntheticConfig, subject_name: str, num_frames: int,
                  intervals: Sequence[Tuple[int, int]], actions: Sequence[str],
                  rng: np.random.Generator):
    """Yields the frames of ``subject_name`` moving the hand as ``actions[k]`` during
    ``intervals[k]`` (no hand elsewhere).

    The family interface (:mod:`coreLib.synthetic.families`): ``rng`` is the
    sequence's generator (per-performance jitter first, then noise); yields
    ``(depth, confi, color)`` per frame, ``(H, W) uint16`` millimetres, ``(H, W)
    uint16`` IR return, ``(H, W, 3) uint8`` BGR.
    """
    person = subject(config.seed, subject_name)
    habits = trajectory_subject(config.seed, subject_name)
    motions = [motion_of(action) for action in actions]
    performances = [dict(path_scale=float(rng.uniform(0.92, 1.08)),
                         dx=float(rng.uniform(-0.015, 0.015)),
                         dy=float(rng.uniform(-0.015, 0.015)),
                         tilt=float(rng.uniform(-4, 4)),
                         size=float(rng.uniform(0.96, 1.04)),
                         depth=float(rng.uniform(-15, 15)))
                    for _ in intervals]
    for images, index, phase in drawing.performance_frames(config, person, num_frames,
                                                           intervals):
        if index >= 0:
            draw_hand(images, person,
                      *hand_pose(config, person, habits, performances[index],
                                 motions[index], phase))
        drawing.add_noise(*images, person, rng)
        yield images
