"""Visualisation helpers: they draw where they should, in stable colours, without touching inputs."""
from __future__ import annotations

import numpy as np
import pytest

from talking_head import viz
from talking_head.models.base import FrameResult


def face() -> np.ndarray:
    import cv2
    from skimage.data import astronaut

    return cv2.resize(astronaut()[:300, 100:400], (256, 256), interpolation=cv2.INTER_AREA)


def test_draw_keypoints_marks_points_in_their_colour():
    img = face()
    before = img.copy()
    pts = np.array([[40.0, 50.0], [200.0, 180.0], [128.0, 20.0]], np.float32)
    out = viz.draw_keypoints(img, pts, radius=4)
    assert np.array_equal(img, before)  # input untouched
    colors = viz.keypoint_colors(3)
    for (x, y), c in zip(pts.astype(int), colors):
        assert np.abs(out[y, x].astype(int) - c.astype(int)).max() <= 2
    far = np.ones(img.shape[:2], bool)
    for x, y in pts.astype(int):
        far[max(0, y - 8):y + 9, max(0, x - 8):x + 9] = False
    assert np.array_equal(out[far], img[far])  # nothing drawn elsewhere


def test_keypoint_colours_are_stable_and_distinct():
    a, b = viz.keypoint_colors(10), viz.keypoint_colors(20)
    assert np.array_equal(a, b[:10])
    assert len({tuple(c) for c in a}) == 10


def test_labels_and_non_finite_points():
    img = face()
    pts = np.array([[60.0, 60.0], [np.nan, 10.0]], np.float32)
    with_labels = viz.draw_keypoints(img, pts, labels=True)
    without = viz.draw_keypoints(img, pts)
    assert (with_labels != without).any()  # the label text is drawn


def test_mask_to_image_is_monotonic_and_resized():
    mask = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (32, 1))
    out = viz.mask_to_image(mask, size=(128, 64))
    assert out.shape == (64, 128, 3) and out.dtype == np.uint8
    brightness = out.astype(int).sum(axis=2)[32]
    assert brightness[-1] > brightness[len(brightness) // 2] > brightness[0]


def test_motion_to_image_colour_wheel():
    flow = np.zeros((40, 40, 2), np.float32)
    flow[:, :20, 0] = 5.0  # left half moves right
    flow[:, 20:, 0] = -5.0  # right half moves left
    flow[:5, :5] = 0  # still corner
    out = viz.motion_to_image(flow, max_magnitude=5.0)
    assert np.array_equal(out[2, 2], [255, 255, 255])  # no motion = white
    left, right = out[20, 10].astype(int), out[20, 30].astype(int)
    assert np.abs(left - right).sum() > 200  # opposite directions, very different colours
    assert out[20, 10].min() < 60  # full speed: saturated
    wheel = viz.color_wheel(33)
    assert wheel.shape == (33, 33, 3) and np.array_equal(wheel[0, 0], [255, 255, 255])


def test_array_to_image_handles_preview_shapes():
    assert viz.array_to_image(np.random.rand(10, 16, 16).astype(np.float32), 32).shape == (32, 32, 3)
    assert viz.array_to_image(np.random.rand(16, 16, 2).astype(np.float32), 32).shape == (32, 32, 3)
    assert viz.array_to_image(face(), 64).shape == (64, 64, 3)
    with pytest.raises(ValueError):
        viz.array_to_image(np.zeros((2, 3, 4, 5)))


def test_grid_layout_and_labels():
    a, b = face(), face()[:, :128]
    out = viz.grid([("source", a), ("half", b)], height=100, gap=2)
    assert out.shape == (100 + viz.LABEL_HEIGHT, 100 + 2 + 50, 3)
    assert (out[: viz.LABEL_HEIGHT, :100] > 150).any()  # label text drawn on the dark strip
    rows = viz.grid([("a", a), ("b", a), ("c", a)], height=50, columns=2)
    assert rows.shape[0] == 2 * (50 + viz.LABEL_HEIGHT) + 2


class _Animated:  # the fields of engine.AnimatedFrame that the grid reads
    def __init__(self, output, result, source_crop, driving_crop):
        self.output, self.result, self.source_crop, self.driving_crop = output, result, source_crop, driving_crop


def test_side_by_side_frame_panels():
    img = face()
    kp = np.array([[100.0, 100.0], [150.0, 120.0]], np.float32)
    mask = np.zeros((64, 64), np.float32)
    mask[20:40, 20:40] = 1.0
    motion = np.zeros((64, 64, 2), np.float32)
    result = FrameResult(frame=img, source_keypoints=kp, driving_keypoints=kp, mask=mask, motion=motion)
    out = viz.side_by_side_frame(_Animated(img, result, img, img), height=128)
    assert out.shape[0] == 128 + viz.LABEL_HEIGHT and out.shape[1] == 6 * 128 + 5 * 2  # with a motion panel
    bare = FrameResult(frame=img)
    out2 = viz.side_by_side_frame(_Animated(img, bare, img, img), height=128)
    assert out2.shape[1] == 5 * 128 + 4 * 2  # placeholders for keypoints and mask, no motion panel


def test_stacks_of_maps_show_their_maximum_whichever_axis_holds_the_stack():
    from talking_head import viz

    maps = np.zeros((5, 32, 32), np.float32)
    maps[2, 4, 20] = 1.0  # one peak at row 4, column 20
    first = viz.array_to_image(maps)
    last = viz.array_to_image(np.moveaxis(maps, 0, -1))
    assert np.array_equal(first, last)
    assert first.shape == (32, 32, 3)
    peak = np.unravel_index(np.argmax(first.astype(int).sum(axis=2)), first.shape[:2])
    assert peak == (4, 20)
    assert not viz.is_map(np.zeros((21, 2))) and not viz.is_map(np.zeros(128))
    gallery = viz.extras_gallery({"heat_maps": maps, "points": np.zeros((21, 2))}, 64)
    assert [caption for _, caption in gallery] == ["heat maps"] and gallery[0][0].shape == (64, 64, 3)
