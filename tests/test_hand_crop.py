"""coreLib.data.hand_crop on drawn depth frames: exact boxes, causality, faults."""

import math

import numpy as np
import pytest

from coreLib.data import hand_crop

HEIGHT, WIDTH = 120, 160
WALL_MM = 2000
HAND_MM = 450
SHARP = hand_crop.HandCropConfig(smoothing=1.0)   # the box is the newest frame's
FOCAL = hand_crop.HandCropConfig().focal_px(WIDTH)
SIDE_MM = hand_crop.HandCropConfig().side_mm


def scene(hand=None, hand_mm=HAND_MM, extra=()) -> np.ndarray:
    """A ``(H, W, 1)`` uint16 depth frame: a wall, a ``(left, top, width, height)``
    hand rectangle, and ``extra`` rectangles ``(left, top, width, height, mm)``."""
    depth = np.full((HEIGHT, WIDTH), WALL_MM, np.uint16)
    for left, top, width, height, mm in extra:
        depth[max(top, 0):top + height, max(left, 0):left + width] = mm
    if hand is not None:
        left, top, width, height = hand
        depth[max(top, 0):top + height, max(left, 0):left + width] = hand_mm
    return depth[:, :, np.newaxis]


def smoothed(values, start, weight=0.4):
    """The tracker's exponential average, step by step (the same float operations)."""
    state, out = start, []
    for value in values:
        state += weight * (value - state)
        out.append(state)
    return out


def test_rectangle_hand_gives_its_centre_depth_and_physical_side():
    box = hand_crop.HandTracker(SHARP).push(scene((30, 20, 24, 30)))
    # A 5x5 median rounds the corners symmetrically: the centroid stays.
    assert (box.center_x, box.center_y, box.depth_mm, box.found) == (41.5, 34.5, 450.0, True)
    assert box.side == SIDE_MM * FOCAL / 450.0


def test_default_smoothing_moves_forty_percent_a_frame_from_the_frame_centre():
    tracker = hand_crop.HandTracker()
    boxes = [tracker.push(scene((30, 20, 24, 30))) for _ in range(3)]
    assert [box.center_x for box in boxes] == smoothed([41.5] * 3, WIDTH / 2)
    assert [box.center_y for box in boxes] == smoothed([34.5] * 3, HEIGHT / 2)
    assert [box.depth_mm for box in boxes] == smoothed([450.0] * 3, 500.0)
    assert [box.side for box in boxes] == [SIDE_MM * FOCAL / depth
                                           for depth in smoothed([450.0] * 3, 500.0)]


def test_crop_cuts_exactly_the_box_and_pads_outside_with_zero():
    frame = np.arange(HEIGHT * WIDTH, dtype=np.uint16).reshape(HEIGHT, WIDTH, 1)
    box = hand_crop.CropBox(center_x=10.0, center_y=50.0, side=30.0, depth_mm=450.0,
                            found=True)
    assert hand_crop.box_bounds(box, frame.shape, frame.shape) == (-5, 35, 30, 30)
    patch = hand_crop.crop_frame(frame, box, frame.shape, 30)
    assert patch.shape == (30, 30, 1) and patch.dtype == np.uint16
    assert not patch[:, :5].any()
    np.testing.assert_array_equal(patch[:, 5:], frame[35:65, 0:25])


def test_colour_frames_are_cut_by_scaled_coordinates():
    colour = np.zeros((2 * HEIGHT, 2 * WIDTH, 3), np.uint8)
    colour[70:130, 60:120] = 200          # the hand's place, twice as large
    box = hand_crop.CropBox(45.0, 50.0, 30.0, 450.0, True)   # depth (30..60, 35..65)
    assert hand_crop.box_bounds(box, colour.shape, (HEIGHT, WIDTH, 1)) == (60, 70, 60, 60)
    patch = hand_crop.crop_frame(colour, box, (HEIGHT, WIDTH, 1), 60)
    assert (patch == 200).all()


@pytest.mark.parametrize("extra", [
    # a table reaching into the hand's depth layer, larger than the hand
    [(0, 80, 160, 40, 520)],
    # a second object well behind it
    [(100, 10, 50, 50, 700)],
    # a speck in front (gone in the median) and a small near blob (too small)
    [(120, 10, 2, 2, 200), (130, 60, 5, 5, 300)],
])
def test_the_nearest_sizeable_region_is_the_hand(extra):
    box = hand_crop.HandTracker(SHARP).push(scene((30, 20, 24, 30), extra=extra))
    assert (box.center_x, box.center_y, box.depth_mm) == (41.5, 34.5, 450.0)


def test_zero_pixels_and_flying_pixels_do_not_move_the_box():
    depth = scene((30, 20, 24, 30))
    rng = np.random.default_rng(0)
    depth[rng.integers(0, HEIGHT, 300), rng.integers(0, WIDTH, 300)] = 0
    # Flying pixels: single in-between depths along the hand's right edge.
    depth[20:50:2, 54, 0] = 1200
    box = hand_crop.HandTracker(SHARP).push(depth)
    # Within a pixel of the clean frame's (41.5, 34.5): the noise only nibbles edges.
    assert abs(box.center_x - 41.5) < 1 and abs(box.center_y - 34.5) < 1
    assert box.depth_mm == 450.0


def test_a_forearm_from_the_bottom_does_not_pull_the_box_off_the_hand():
    arm = (36, 50, 12, 70, HAND_MM)        # from the hand down to the bottom edge
    box = hand_crop.HandTracker(SHARP).push(scene((30, 20, 24, 30), extra=[arm]))
    side = SIDE_MM * FOCAL / 450.0           # the upper part: one box below the top
    assert box.center_y < 20 + side / 2


def test_causal_a_later_frame_never_moves_an_earlier_box():
    moving = [scene((20 + 4 * step, 20, 24, 30)) for step in range(10)]
    other_tail = moving[:6] + [scene((100, 60, 24, 30), 380)] * 4
    tracker = hand_crop.HandTracker()
    first = [tracker.push(frame) for frame in moving]
    tracker = hand_crop.HandTracker()
    second = [tracker.push(frame) for frame in other_tail]
    assert first[:6] == second[:6]
    assert first[6] != second[6]
    # and frame by frame equals the whole sequence at once
    pushed = hand_crop.HandTracker()
    assert [pushed.push(frame) for frame in moving[:6]] == first[:6]


@pytest.mark.parametrize("empty", [
    np.full((HEIGHT, WIDTH, 1), WALL_MM, np.uint16),      # nothing within reach
    np.zeros((HEIGHT, WIDTH, 1), np.uint16),               # no return at all
])
def test_no_hand_at_the_start_gives_the_frame_centre_and_is_counted(empty):
    tracker = hand_crop.HandTracker()
    boxes = [tracker.push(empty) for _ in range(3)]
    start = hand_crop.CropBox(WIDTH / 2, HEIGHT / 2, SIDE_MM * FOCAL / 500.0, 500.0, False)
    assert boxes == [start] * 3
    assert (tracker.frames_seen, tracker.frames_without_hand) == (3, 3)
    patch = hand_crop.crop_frame(empty, boxes[0], empty.shape, 16)
    assert patch.shape == (16, 16, 1)


def test_a_hand_leaving_holds_the_last_box():
    tracker = hand_crop.HandTracker()
    seen = [tracker.push(scene((30, 20, 24, 30))) for _ in range(4)]
    gone = [tracker.push(frame) for frame in
            (scene(), np.zeros((HEIGHT, WIDTH, 1), np.uint16), scene())]
    held = hand_crop.CropBox(seen[-1].center_x, seen[-1].center_y, seen[-1].side,
                             seen[-1].depth_mm, False)
    assert gone == [held] * 3
    assert tracker.frames_without_hand == 3


def test_a_hand_entering_from_an_edge_is_followed_without_a_jump():
    tracker = hand_crop.HandTracker()
    lefts = [-24, -18, -12, -6, 0, 6]      # from outside the left edge inwards
    boxes = [tracker.push(scene((left, 40, 24, 30))) for left in lefts]
    assert [box.found for box in boxes] == [False, True, True, True, True, True]
    xs = [box.center_x for box in boxes]
    assert xs[0] == WIDTH / 2
    # Every step moves the centre left, at most 40 % of the way to the hand.
    assert all(later < earlier for earlier, later in zip(xs, xs[1:]))
    assert all(abs(later - earlier) <= 0.4 * earlier for earlier, later in zip(xs, xs[1:]))
    frames = [hand_crop.crop_frame(scene((left, 40, 24, 30)), box, (HEIGHT, WIDTH, 1), 32)
              for left, box in zip(lefts, boxes)]
    assert {frame.shape for frame in frames} == {(32, 32, 1)}


def test_a_hand_drawn_larger_than_life_widens_the_box_up_to_the_cap():
    wide = hand_crop.HandTracker(SHARP).push(scene((10, 10, 120, 40)))
    width_mm = 120 * 450.0 / FOCAL
    assert wide.side == pytest.approx(min(1.25 * width_mm, 2.5 * SIDE_MM) * FOCAL / 450.0)


def test_frames_change_size_within_a_sequence_is_refused():
    tracker = hand_crop.HandTracker()
    tracker.push(scene())
    with pytest.raises(ValueError, match="80x60 pixels after frames of 160x120"):
        tracker.push(np.zeros((60, 80, 1), np.uint16))


def test_hand_frames_yields_the_crops_of_the_pushed_boxes():
    depth = [scene((20 + 3 * step, 20, 24, 30)) for step in range(5)]
    colour = [np.repeat((frame // 8).astype(np.uint8), 3, axis=2) for frame in depth]
    tracker = hand_crop.HandTracker()
    boxes = [tracker.push(frame) for frame in depth]
    results = list(hand_crop.hand_frames(depth, 24, other_frames=colour))
    assert [box for _, box in results] == boxes
    for (patch, box), frame in zip(results, colour):
        np.testing.assert_array_equal(patch, hand_crop.crop_frame(frame, box, depth[0].shape,
                                                                  24))


def test_motion_is_the_raw_hand_step_in_box_sides_and_zero_across_a_gap():
    tracker = hand_crop.HandTracker()
    frames = [scene((30, 20, 24, 30)), scene((36, 17, 24, 30)), scene(),
              scene((42, 17, 24, 30)), scene((45, 17, 24, 30), hand_mm=480)]
    boxes = [tracker.push(frame) for frame in frames]
    # Raw centres 41.5, 47.5, -, 53.5, 56.5 (x) and 34.5, 31.5, ... (y); the smoothed
    # box's side converts pixels to box sides, side_mm the depth step.
    assert boxes[0].motion == (0.0, 0.0, 0.0)                 # no previous hand
    assert boxes[1].motion == (6.0 / boxes[1].side, -3.0 / boxes[1].side, 0.0)
    assert boxes[2].motion == boxes[3].motion == (0.0, 0.0, 0.0)   # the gap
    assert boxes[4].motion == (3.0 / boxes[4].side, 0.0, 30.0 / SIDE_MM)


def test_path_channels_are_constant_planes_of_the_steps_at_the_input_scale():
    motion = hand_crop.HandCropConfig(path="motion")
    box = hand_crop.CropBox(80.0, 60.0, 50.0, 450.0, True, motion=(0.25, -0.5, 0.8))
    planes = hand_crop.path_channels(box, motion, 4, "uint16")
    # 0.5 + step / (2 * 0.5), clipped to [0, 1], times 4095 (255 for uint8), rounded.
    assert planes.dtype == np.uint16 and planes.shape == (4, 4, 3)
    assert (planes == np.array([3071, 0, 4095], np.uint16)).all()
    assert (hand_crop.path_channels(box, motion, 2, "uint8")
            == np.array([191, 0, 255], np.uint8)).all()
    assert hand_crop.path_channels(box, hand_crop.HandCropConfig(), 4, "uint16") is None

    depth = scene((60, 40, 24, 30))
    tensor = hand_crop.model_frame(depth, box, depth.shape, 4, motion)
    assert tensor.shape == (4, 4, 4)
    np.testing.assert_array_equal(tensor[:, :, :1],
                                  hand_crop.crop_frame(depth, box, depth.shape, 4))
    np.testing.assert_array_equal(tensor[:, :, 1:], planes)
    bgr = np.dstack([(depth // 8).astype(np.uint8), np.zeros_like(depth, np.uint8),
                     np.full_like(depth, 7, np.uint8)])
    rgb = hand_crop.model_frame(bgr, box, depth.shape, 4, motion, is_bgr=True)
    np.testing.assert_array_equal(rgb[:, :, :3],
                                  hand_crop.crop_frame(bgr, box, depth.shape, 4)[:, :, ::-1])
    assert hand_crop.frame_channels(3, motion) == 6
    assert hand_crop.frame_channels(1, None) == 1


def test_the_windowed_search_finds_the_whole_frame_search_region_bit_for_bit(monkeypatch):
    """find_hand medians only the part of the frame around pixels within reach;
    the region (centre, depth, width, area) equals the whole frame's search on
    frames with specks in and out of reach, zeros, a table, hands at the edges."""
    rng = np.random.default_rng(7)
    scenes = []
    for _ in range(60):
        left, top = int(rng.integers(-20, WIDTH - 4)), int(rng.integers(-25, HEIGHT - 4))
        frame = scene((left, top, int(rng.integers(10, 40)), int(rng.integers(12, 45))),
                      hand_mm=int(rng.integers(300, 700)),
                      extra=[(0, HEIGHT - 30, WIDTH, 30, 800)] if rng.random() < 0.3 else ())
        plane = frame[:, :, 0]
        # Specks within reach in a third of the frames (the window grows to them).
        for value in (0, 1500, 400) if rng.random() < 0.33 else (0, 1500):
            spots = rng.random(plane.shape) < 0.01
            plane[spots] = value
        scenes.append(frame)
    scenes += [scene(), np.zeros((HEIGHT, WIDTH, 1), np.uint16)]
    config = hand_crop.HandCropConfig()
    windowed = [hand_crop.find_hand(frame, config) for frame in scenes]
    search_window = hand_crop._search_window
    monkeypatch.setattr(hand_crop, "_search_window", lambda raw, config: None if search_window(
        raw, config) is None else (0, raw.shape[0], 0, raw.shape[1]))
    assert windowed == [hand_crop.find_hand(frame, config) for frame in scenes]
    assert sum(region is not None for region in windowed) > 40
    whole = (0, HEIGHT, 0, WIDTH)
    assert sum(search_window(frame[:, :, 0], config) not in (None, whole)
               for frame in scenes) > 30


def test_config_checks():
    with pytest.raises(ValueError, match="smoothing"):
        hand_crop.HandCropConfig(smoothing=0)
    with pytest.raises(ValueError, match="path must be one of none, motion"):
        hand_crop.HandCropConfig(path="speed")
    with pytest.raises(ValueError, match="near_mm < reach_mm"):
        hand_crop.HandCropConfig(near_mm=900, reach_mm=800)
    assert math.isclose(hand_crop.HandCropConfig().focal_px(320),
                        160 / math.tan(math.radians(37)))
