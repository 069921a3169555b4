"""The ``pose`` family of the synthetic dataset (the default): a pose and a motion per action.

During a performance a hand is drawn - palm, fingers, thumb, sometimes a pinch
ring or discs nearer the camera - whose pose and motion depend on the action
(:data:`ACTION_STYLES`); in no-action frames the hand is absent.

The action poses are chosen to stay distinct under what training does to a window
(flips and rotations up to 35 degrees, resizing to 32x32): finger count, spread,
rings and finger stubs differ, and orientations that matter differ by 90 degrees.
Subjects differ in speed, hand size, position, skin tone, background and noise.

A family module offers :func:`length_factor` and :func:`render_frames`
(:mod:`coreLib.synthetic.families`).
"""

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from coreLib.synthetic import drawing
from coreLib.synthetic.config import ACTIONS, SyntheticConfig
from coreLib.synthetic.drawing import THUMB_OUT, Finger, together
from coreLib.synthetic.randomness import Subject, by_action, subject


@dataclass(frozen=True)


class ActionStyle:
    """How an action looks and moves.

    palm: ellipse half-axes (hand units). fingers: the extended fingers.
    ring: pinch ring ``(x, y, radius, thickness)`` or None. front: discs drawn
    nearer the camera on the palm ``(x, y, radius)`` (a fist's thumb, a finger
    pointing at the camera). hand_angle: degrees the hand is turned (0: fingers
    up). motion: trajectory name (see :func:`motion_at`). cycles: repetitions of
    the motion per performance. distance: hand distance (mm). length_factor:
    relative length of a performance.
    """
    palm: Tuple[float, float]
    fingers: Tuple[Finger, ...]
    motion: str
    cycles: float = 1.0
    hand_angle: float = 0.0
    distance: float = 600.0
    ring: Optional[Tuple[float, float, float, float]] = None
    front: Tuple[Tuple[float, float, float], ...] = ()
    length_factor: float = 1.0


ACTION_STYLES: Dict[str, ActionStyle] = {
    # fist with the thumb across its front, shaken
    "asl-bathroom": ActionStyle((1.15, 1.1), (), "shake", 2, distance=620,
                                front=((-0.1, 0.3, 0.42),), length_factor=0.9),
    # flat hand, four fingers together, no thumb, twisting
    "asl-blue": ActionStyle((1.0, 1.15), together((1.5, 1.7, 1.65, 1.35)),
                            "twist", 1, length_factor=1.1),
    # index and thumb parallel, hand on its side, shaken
    "asl-green": ActionStyle((1.0, 1.1), (Finger((0.5, 0.9), 0, 1.9, 0.45),
                                          Finger((-0.55, 0.85), 0, 1.3, 0.45)),
                             "shake", 2, hand_angle=90, distance=610),
    # little finger only, drawing a J
    "asl-j": ActionStyle((0.95, 1.05), (Finger((0.7, 0.7), 12, 1.3, 0.38),),
                         "jpath", 1, distance=640, length_factor=1.2),
    # claw that opens and closes
    "asl-milk": ActionStyle((1.05, 1.1), together((1.1, 1.2, 1.2, 1.0), 0.45, 3.0)
                            + (Finger((-0.95, 0.1), -60, 0.9, 0.5),),
                            "pulse", 2, length_factor=1.0),
    # index and middle finger opening and closing, hand on its side
    "asl-scissors": ActionStyle((1.0, 1.1), (Finger((-0.3, 1.0), -16, 1.8, 0.45),
                                             Finger((0.3, 1.0), 16, 1.8, 0.45)),
                                "scissor", 2, hand_angle=90, distance=590),
    # index up, wagging
    "asl-where": ActionStyle((1.0, 1.1), (Finger((-0.2, 1.05), 0, 2.0, 0.48),),
                             "wag", 2, distance=620, length_factor=0.9),
    # thumb and little finger spread wide, twisting
    "asl-yellow": ActionStyle((1.0, 1.1), (Finger((-0.85, 0.45), -80, 1.6, 0.5),
                                           Finger((0.75, 0.75), 55, 1.7, 0.42)),
                              "twist", 2, length_factor=1.0),
    # fist with the index pointing at the camera and the thumb out, pushed forward
    "asl-you": ActionStyle((1.05, 1.05), (Finger((-0.9, 0.2), -80, 1.3, 0.55),),
                           "push", 1, distance=680, front=((0.1, 0.3, 0.6),),
                           length_factor=0.8),
    # index on its side, drawing a Z
    "asl-z": ActionStyle((1.0, 1.1), (Finger((0.0, 1.05), 0, 1.9, 0.46),),
                         "zigzag", 1, hand_angle=90, distance=610, length_factor=1.3),
    # L hand (index up, thumb out) drawing a circle
    "ui-circle": ActionStyle((1.0, 1.1), (Finger((0.1, 1.05), 0, 1.9, 0.46),
                                          THUMB_OUT),
                             "circle", 1, length_factor=1.4),
    # thumb and index pinched into a ring, one tap
    "ui-click": ActionStyle((1.0, 1.05), (), "tap", 1, distance=630,
                            ring=(-0.3, 1.55, 0.72, 0.36), length_factor=0.7),
    # OK sign (ring and three fingers), two taps
    "ui-doubleclick": ActionStyle((1.0, 1.1),
                                  (Finger((0.05, 1.05), 2, 1.7, 0.4),
                                    Finger((0.4, 0.95), 18, 1.65, 0.4),
                                    Finger((0.75, 0.7), 34, 1.4, 0.4)),
                                  "tap", 2, ring=(-0.6, 1.35, 0.55, 0.36),
                                  length_factor=1.0),
    # three spread fingers pointing down, tapping
    "ui-keyTap": ActionStyle((1.0, 1.1), (Finger((-0.55, 0.9), -30, 1.5, 0.45),
                                          Finger((0.0, 1.05), 0, 1.6, 0.45),
                                          Finger((0.55, 0.9), 30, 1.5, 0.45)),
                             "tap", 1, hand_angle=180, distance=620, length_factor=0.8),
    # flat open hand with the thumb alongside, pushed at the screen
    "ui-screenTap": ActionStyle((1.1, 1.25), together((1.5, 1.7, 1.65, 1.35), 0.45)
                                + (Finger((-1.0, 0.35), -35, 1.2, 0.5),),
                                "push", 1, distance=610, length_factor=0.9),
    # open hand, fingers spread, swiping across
    "ui-swipe": ActionStyle((1.0, 1.1), together((1.5, 1.75, 1.7, 1.4), 0.4, 7.5)
                            + (THUMB_OUT,),
                            "swipe", 1, distance=580, length_factor=1.1),
}


def action_style(action: str) -> ActionStyle:
    """The pose and motion of an action (a known one, or one picked by name)."""
    return by_action(ACTION_STYLES, action, ACTIONS)


@dataclass(frozen=True)


class Motion:
    """Offsets of the hand at one moment: position (hand units), turn (degrees),
    distance (mm), finger length and spread factors."""
    dx: float = 0.0
    dy: float = 0.0
    dangle: float = 0.0
    ddistance: float = 0.0
    extension: float = 1.0
    spread: float = 1.0


def motion_at(name: str, cycles: float, phase: float) -> Motion:
    """The hand's motion at ``phase`` in [0, 1) of a performance (y up)."""
    wave = math.sin(2 * math.pi * cycles * phase)
    if name == "shake":
        return Motion(dx=0.9 * wave)
    if name == "twist":
        return Motion(dangle=30 * wave)
    if name == "wag":
        return Motion(dangle=24 * wave, dx=0.3 * wave)
    if name == "circle":
        turn = 2 * math.pi * phase
        return Motion(dx=1.6 * math.cos(turn), dy=1.6 * math.sin(turn))
    if name == "swipe":
        return Motion(dx=-2.6 + 5.2 * phase, dy=0.3 * math.sin(math.pi * phase))
    if name == "zigzag":
        points = ((-1.4, 1.2), (1.4, 1.2), (-1.4, -1.2), (1.4, -1.2))
        position = phase * (len(points) - 1)
        segment = min(int(position), len(points) - 2)
        along = position - segment
        (x0, y0), (x1, y1) = points[segment], points[segment + 1]
        return Motion(dx=x0 + (x1 - x0) * along, dy=y0 + (y1 - y0) * along)
    if name == "jpath":
        if phase < 0.6:
            return Motion(dy=1.2 - 2.2 * phase / 0.6)
        hook = (phase - 0.6) / 0.4
        return Motion(dx=-0.9 * (1 - math.cos(math.pi * hook)),
                      dy=-1.0 - 0.5 * math.sin(math.pi * hook), dangle=45 * hook)
    if name == "pulse":
        return Motion(extension=0.65 + 0.35 * math.cos(2 * math.pi * cycles * phase))
    if name == "scissor":
        return Motion(spread=1.0 + 0.8 * wave)
    if name == "push":
        return Motion(ddistance=-150 * math.sin(math.pi * phase))
    if name == "tap":
        press = abs(math.sin(math.pi * cycles * phase))
        return Motion(dy=-0.7 * press, ddistance=-40 * press)
    raise ValueError(f"unknown motion {name!r}")


def placement(config: SyntheticConfig, person: Subject, performance: Dict[str, float],
              distance: float) -> Tuple[float, float, float, float]:
    """``(distance, unit, center_x, center_y)`` of a pose-family hand before its
    motion: the large drawing, or the ``real`` camera model."""
    if config.hand_size == "real":
        distance -= drawing.REAL_ARM_SHIFT_MM
        unit = (drawing.real_hand_unit(config, distance) * person.hand_scale
                * performance["scale"])
        spread = drawing.REAL_POSITION_SPREAD
        return (distance, unit,
                config.width * (0.5 + spread * (person.offset[0] + performance["dx"])),
                config.height * (0.52 + spread * (person.offset[1] + performance["dy"])))
    unit = (0.13 * config.height * config.hand_scale * person.hand_scale
            * performance["scale"]
            * drawing.REFERENCE_DISTANCE_MM / distance)
    center_x = config.width * (0.5 + person.offset[0] + performance["dx"])
    center_y = config.height * (0.52 + person.offset[1] + performance["dy"])
    # A larger hand's palm sits lower: raised fingers reach about 2.5 hand units
    # above the palm centre and the palm 1.1 below, so without this shift the
    # fingertips of a scaled hand leave the top of the frame. No shift at scale 1.
    center_y += drawing.SCALED_HAND_DROP * (config.hand_scale - 1) * 0.13 * config.height
    return distance, unit, center_x, center_y


def draw_hand(images, config: SyntheticConfig, person: Subject, style: ActionStyle,
              performance: Dict[str, float], phase: float) -> None:
    """Draws the hand of one frame into ``(depth, confi, color)`` in place."""
    motion = motion_at(style.motion, style.cycles, phase)
    distance, unit, center_x, center_y = placement(
        config, person, performance, style.distance + motion.ddistance)
    # The motion is measured in the hand units of an unscaled hand, so a larger
    # hand (config.hand_scale) moves along the same path.
    amplitude = person.amplitude * performance["amplitude"] / config.hand_scale
    center_x += motion.dx * amplitude * unit
    center_y -= motion.dy * amplitude * unit
    angle = math.radians(style.hand_angle + person.angle + performance["angle"]
                         + motion.dangle)
    to_image, paint = drawing.hand_canvas(images, center_x, center_y, unit, angle)
    finger_values = drawing.hand_values(person, distance + 15, 1.06)
    drawing.draw_fingers(to_image, paint, style.fingers, finger_values, unit,
                         spread=motion.spread, extension=motion.extension)
    if style.ring is not None:
        ring_x, ring_y, radius, ring_width = style.ring
        center = to_image(ring_x, ring_y)
        thickness = max(1, int(round(ring_width * unit)))
        ring_radius = int(round(radius * unit * drawing.SUBPIXEL))
        paint(finger_values, lambda image, value: cv2.circle(
            image, center, ring_radius, value, thickness, cv2.LINE_8,
            drawing.SUBPIXEL_BITS))
    palm_angle = -math.degrees(angle)  # cv2 turns clockwise on screen
    drawing.draw_palm(to_image, paint, style.palm,
                      drawing.hand_values(person, distance, 1.0), unit, palm_angle)
    front_values = drawing.hand_values(person, distance - 40, 1.12)
    for front_x, front_y, radius in style.front:
        center = to_image(front_x, front_y)
        disc_radius = int(round(radius * unit * drawing.SUBPIXEL))
        paint(front_values, lambda image, value: cv2.circle(
            image, center, disc_radius, value, -1, cv2.LINE_8, drawing.SUBPIXEL_BITS))


def length_factor(action: str) -> float:
    """How long a performance of ``action`` is relative to the mean."""
    return action_style(action).length_factor


def render_frames(config: SyntheticConfig, subject_name: str, num_frames: int,
                  intervals: Sequence[Tuple[int, int]], actions: Sequence[str],
                  rng: np.random.Generator):
    """Yields the frames of a subject performing ``actions[k]`` in ``intervals[k]``
    (frames outside every interval show no hand).

    The family interface (:mod:`coreLib.synthetic.families`): ``rng`` is the
    sequence's generator (per-performance jitter first, then noise); yields
    ``(depth, confi, color)`` per frame, ``(H, W) uint16`` millimetres, ``(H, W)
    uint16`` IR return, ``(H, W, 3) uint8`` BGR.
    """
    person = subject(config.seed, subject_name)
    styles = [action_style(action) for action in actions]
    performances = [dict(scale=float(rng.uniform(0.95, 1.05)),
                         amplitude=float(rng.uniform(0.9, 1.1)),
                         dx=float(rng.uniform(-0.02, 0.02)),
                         dy=float(rng.uniform(-0.02, 0.02)),
                         angle=float(rng.uniform(-4, 4)))
                    for _ in intervals]
    for images, index, phase in drawing.performance_frames(config, person, num_frames,
                                                           intervals):
        if index >= 0:
            draw_hand(images, config, person, styles[index], performances[index], phase)
        drawing.add_noise(*images, person, rng)
        yield images
