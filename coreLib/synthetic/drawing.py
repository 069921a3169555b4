"""Drawing shared by both synthetic families: the scene, the camera model, the hand's parts.

A frame is three images drawn from one geometry: ``depth`` ``(H, W) uint16``
millimetres, ``confi`` ``(H, W) uint16`` IR return and ``color`` ``(H, W, 3)
uint8`` BGR - near depth and a strong return on the hand, far depth and a weak
return on the background, skin tone on a tinted background. A hand is drawn in
hand units (y up) mapped to cv2's fixed-point pixel coordinates.
"""

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import cv2
import numpy as np

from coreLib.synthetic.config import SyntheticConfig
from coreLib.synthetic.randomness import Subject

SUBPIXEL_BITS = 4  # cv2 drawing with fixed-point coordinates: smooth motion
SUBPIXEL = 1 << SUBPIXEL_BITS
REFERENCE_DISTANCE_MM = 600.0
SCALED_HAND_DROP = 2.0  # unscaled hand units per unit of hand_scale above 1
# The ``real`` camera model: a head-worn depth camera of this horizontal field of
# view (a SoftKinetic DS325's), hands ARM_SHIFT nearer than the large drawing's
# action distances (430-530 mm at rest: arm's length), one hand unit this many
# millimetres (hands 40-60 pixels across in 320x240), the hand's place in
# the view spread POSITION_SPREAD times wider (an ego-centric view does not keep
# the hand in the middle) and the background boxes pulled to CLUTTER_FACTOR of
# their distance (a table or a second object behind the hand, within reach).
REAL_FIELD_OF_VIEW_DEG = 74.0
REAL_ARM_SHIFT_MM = 150.0
REAL_HAND_UNIT_MM = 25.0
REAL_POSITION_SPREAD = 3.0
REAL_CLUTTER_FACTOR = 0.75


@dataclass(frozen=True)


class Finger:
    """One extended finger (or thumb) in hand units, y pointing to the fingertips.

    base: where it leaves the palm; angle: degrees from "up", positive to the
    right; length and width in hand units.
    """
    base: Tuple[float, float]
    angle: float
    length: float
    width: float


def together(lengths, width=0.42, spread=1.0):
    """Four fingers side by side along the palm's top edge."""
    bases = ((-0.6, 0.85), (-0.2, 1.0), (0.2, 1.0), (0.6, 0.85))
    angles = (-4.0, -1.3, 1.3, 4.0)
    return tuple(Finger(base, angle * spread, length, width)
                 for base, angle, length in zip(bases, angles, lengths))


THUMB_OUT = Finger((-0.9, 0.25), -75.0, 1.3, 0.5)


def background_of(config: SyntheticConfig, person: Subject):
    """The empty scene of a subject: ``(depth (H, W) uint16 mm, confi (H, W)
    uint16, color (H, W, 3) uint8 BGR)``."""
    height, width = config.height, config.width
    rows = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    cols = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    # A wall or desk, farther towards the top of the frame.
    depth = person.wall_mm - person.wall_tilt_mm * rows + 60.0 * cols
    depth = np.broadcast_to(depth, (height, width)).copy()
    shade = 1.0 + 0.25 * rows + 0.08 * cols
    color = np.stack([np.broadcast_to(shade * tint, (height, width))
                      for tint in person.background], axis=-1)
    reflectance = np.full((height, width), 900.0, np.float32)
    for x, y, box_width, box_height, distance in person.clutter:
        if config.hand_size == "real":
            distance = distance * REAL_CLUTTER_FACTOR
        left, top = int(x * width), int(y * height)
        right, bottom = int((x + box_width) * width), int((y + box_height) * height)
        depth[top:bottom, left:right] = distance
        color[top:bottom, left:right] *= 0.85
        reflectance[top:bottom, left:right] = 700.0
    confi = reflectance * (1000.0 / depth) ** 2
    return (np.rint(depth).astype(np.uint16), np.rint(confi).astype(np.uint16),
            np.clip(np.rint(color), 0, 255).astype(np.uint8))


def hand_values(person: Subject, distance: float, brightness: float):
    """Depth, IR return and BGR colour of a hand part at ``distance`` mm."""
    confi = 1400.0 * (1000.0 / distance) ** 2
    shade = min(1.3, max(0.7, 1.0 + (REFERENCE_DISTANCE_MM - distance) / 800.0))
    color = tuple(int(min(255, round(channel * shade * brightness)))
                  for channel in person.skin)
    return int(round(distance)), int(round(confi)), color


def hand_canvas(images, center_x: float, center_y: float, unit: float, angle: float):
    """The two drawing helpers of one hand, shared by both families.

    Args:
        images: ``(depth, confi, color)`` arrays drawn into in place.
        center_x, center_y: the palm centre in pixels.
        unit: pixels per hand unit.
        angle: the hand's turn in radians (counter-clockwise on screen).

    Returns:
        ``(to_image, paint)``: ``to_image(x, y)`` maps hand units (y up) to cv2's
        fixed-point image coordinates (y down); ``paint(values, draw)`` calls
        ``draw(image, value)`` once per modality with that modality's value.
    """
    cos_a, sin_a = math.cos(angle), math.sin(angle)

    def to_image(x: float, y: float) -> Tuple[int, int]:
        image_x = center_x + unit * (x * cos_a - y * sin_a)
        image_y = center_y - unit * (x * sin_a + y * cos_a)
        return int(round(image_x * SUBPIXEL)), int(round(image_y * SUBPIXEL))

    def paint(values, draw):
        for image, value in zip(images, values):
            draw(image, value if isinstance(value, tuple) else (value,))

    return to_image, paint


def real_hand_unit(config: SyntheticConfig, distance_mm: float) -> float:
    """Pixels per hand unit of the ``real`` camera model at a distance: the focal
    length (from the frame width and the field of view) times the unit's size
    over the distance."""
    focal = (config.width / 2.0) / math.tan(math.radians(REAL_FIELD_OF_VIEW_DEG) / 2.0)
    return focal * REAL_HAND_UNIT_MM / distance_mm


def draw_fingers(to_image, paint, fingers: Sequence[Finger], values, unit: float,
                 spread: float = 1.0, extension: float = 1.0) -> None:
    """Draws extended fingers as thick lines from inside the palm to the tips.

    Args:
        to_image, paint: the helpers of :func:`hand_canvas`.
        fingers: the fingers, in hand units.
        values: ``(depth, confi, color)`` of a finger (:func:`hand_values`).
        unit: pixels per hand unit.
        spread, extension: factors of every finger's angle and length.
    """
    for finger in fingers:
        finger_angle = math.radians(finger.angle * spread)
        length = finger.length * extension
        direction = (math.sin(finger_angle), math.cos(finger_angle))
        start = to_image(finger.base[0] - 0.3 * direction[0],
                         finger.base[1] - 0.3 * direction[1])
        tip = to_image(finger.base[0] + length * direction[0],
                       finger.base[1] + length * direction[1])
        thickness = max(1, int(round(finger.width * unit)))
        paint(values, lambda image, value: cv2.line(
            image, start, tip, value, thickness, cv2.LINE_8, SUBPIXEL_BITS))


def draw_palm(to_image, paint, palm: Tuple[float, float], values, unit: float,
              angle_degrees: float) -> None:
    """Draws the palm: a filled ellipse of half-axes ``palm`` (hand units) turned
    ``angle_degrees`` clockwise on screen (cv2's sense)."""
    axes = (int(round(palm[0] * unit * SUBPIXEL)), int(round(palm[1] * unit * SUBPIXEL)))
    center = to_image(0.0, 0.0)
    paint(values, lambda image, value: cv2.ellipse(
        image, center, axes, angle_degrees, 0, 360, value, -1, cv2.LINE_8, SUBPIXEL_BITS))


def add_noise(depth: np.ndarray, confi: np.ndarray, color: np.ndarray,
               person: Subject, rng: np.random.Generator) -> None:
    """Sensor noise as sparse dropouts and speckles (dense noise would make every
    PNG several times larger and slower to write)."""
    pixels = depth.size
    lost = rng.integers(0, pixels, int(pixels * person.depth_dropout))
    depth.reshape(-1)[lost] = 0
    confi.reshape(-1)[lost] = rng.integers(0, 40, len(lost)).astype(np.uint16)
    speckled = rng.integers(0, pixels, int(pixels * person.color_speckle))
    flat = color.reshape(-1, 3)
    change = rng.integers(-12, 13, (len(speckled), 1))
    flat[speckled] = np.clip(flat[speckled].astype(np.int16) + change, 0, 255)


def performance_frames(config: SyntheticConfig, person: Subject, num_frames: int,
                       intervals: Sequence[Tuple[int, int]]):
    """The frames of one sequence before the hand is drawn, for both families.

    Yields:
        ``((depth, confi, color), index, phase)`` per frame: fresh copies of the
        subject's background, the performance the frame lies in (-1: no action)
        and how far into it (0 to 1, at the frame's middle).
    """
    frame_performance = np.full(num_frames, -1)
    for index, (pos, length) in enumerate(intervals):
        frame_performance[pos:pos + length] = index
    background = background_of(config, person)
    for frame in range(num_frames):
        images = tuple(image.copy() for image in background)
        index = int(frame_performance[frame])
        phase = 0.0
        if index >= 0:
            pos, length = intervals[index]
            phase = (frame - pos + 0.5) / length
        yield images, index, phase
