"""Shared motion math and grid helpers behave as the families rely on them to."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from talking_head import motion
from talking_head.models import base, blocks


def test_hull_area_of_a_square_and_degenerate_cases():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [1, 1]], float)
    assert motion.hull_area(square) == pytest.approx(4.0)
    assert motion.hull_area(np.array([[0, 0], [1, 1], [2, 2]], float)) == 0.0  # collinear
    assert motion.hull_area(np.array([[0, 0], [1, 1]], float)) == 0.0
    assert motion.hull_area(np.array([[0, 0], [1, np.nan], [2, 0]], float)) == 0.0


def test_movement_scale_is_the_ratio_of_hull_sizes():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(10, 2))
    assert motion.movement_scale(3 * pts, pts) == pytest.approx(3.0)
    assert motion.movement_scale(pts, np.zeros((10, 2))) == 1.0  # degenerate reference: no scaling


def test_relative_transfer_of_points_and_transforms():
    src = torch.randn(1, 5, 2)
    ref = torch.randn(1, 5, 2)
    drv = torch.randn(3, 5, 2)
    moved = motion.relative_points(drv, ref, src, scale=2.0)
    assert torch.allclose(moved - src, 2.0 * (drv - ref))
    assert torch.allclose(motion.relative_points(ref, ref, src), src)
    a = torch.randn(1, 5, 2, 2) + 3 * torch.eye(2)
    assert torch.allclose(motion.relative_transforms(a, a, torch.eye(2).expand(1, 5, 2, 2)), torch.eye(2).expand(1, 5, 2, 2), atol=1e-5)


def test_best_frame_skips_frames_without_a_face():
    target = np.zeros(4)
    sigs = [None, np.ones(4), np.full(4, 0.1), None]
    assert motion.best_frame_index(target, sigs) == 2
    assert motion.best_frame_index(target, [None, None]) == 0


@pytest.mark.parametrize("align_corners", [True, False])
def test_grid_to_pixels_matches_what_grid_sample_reads(align_corners):
    h, w = 7, 9
    image = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)
    px = torch.tensor([[2.0, 3.0], [0.0, 0.0], [8.0, 6.0]])
    # invert grid_to_pixels for integer pixel positions, then sample: must read exactly those pixels
    norm = torch.empty_like(px)
    if align_corners:
        norm[:, 0], norm[:, 1] = px[:, 0] / (w - 1) * 2 - 1, px[:, 1] / (h - 1) * 2 - 1
    else:
        norm[:, 0], norm[:, 1] = (2 * px[:, 0] + 1) / w - 1, (2 * px[:, 1] + 1) / h - 1
    assert torch.allclose(base.grid_to_pixels(norm, (h, w), align_corners), px, atol=1e-5)
    sampled = F.grid_sample(image, norm.view(1, 1, 3, 2), align_corners=align_corners).view(3)
    expected = image[0, 0, px[:, 1].long(), px[:, 0].long()]
    assert torch.allclose(sampled, expected, atol=1e-4)


@pytest.mark.parametrize("align_corners", [True, False])
def test_identity_grid_has_zero_flow(align_corners):
    h = w = 16
    theta = torch.eye(2, 3)[None]
    grid = F.affine_grid(theta, (1, 1, h, w), align_corners=align_corners)
    flow = base.flow_to_pixels(grid, (64, 64), align_corners)
    assert flow.abs().max() < 1e-4
    one_pixel = 2.0 / (63 if align_corners else 64)  # a shift of one output pixel, in grid units
    shifted = base.flow_to_pixels(grid + torch.tensor([one_pixel, 0.0]), (64, 64), align_corners)
    assert torch.allclose(shifted[..., 0], torch.ones_like(shifted[..., 0]), atol=1e-4)
    assert shifted[..., 1].abs().max() < 1e-4


def test_warp_parts_equals_one_warp_per_grid():
    image = torch.rand(1, 3, 8, 8)
    grids = torch.rand(2, 4, 8, 8, 2) * 2 - 1
    parts = blocks.warp_parts(image, grids, align_corners=True)
    for b in range(2):
        for n in range(4):
            one = F.grid_sample(image, grids[b, n][None], align_corners=True)
            assert torch.allclose(parts[b, n], one[0], atol=1e-6)


def test_heatmap_moments_agree_with_keypoints():
    logits = torch.randn(2, 5, 12, 12)
    heat = blocks.spatial_softmax(logits, 0.1)
    assert torch.allclose(heat.sum(dim=(2, 3)), torch.ones(2, 5), atol=1e-5)
    mean, _ = blocks.heatmap_moments(heat)
    assert torch.allclose(mean, blocks.heatmap_to_keypoints(heat), atol=1e-5)
