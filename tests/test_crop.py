"""Crop to the person at the working resolution and paste back: exact round trips."""

from __future__ import annotations

import numpy as np
import pytest
from pose_synth import bone_lengths, build_body, on_ground

from dance_reenact.models.core.schema import Person
from dance_reenact.models.geometry.crop import (
    WORKING_HW,
    CropBox,
    crop_to_box,
    paste_back,
    person_box,
    points_from_crop,
    points_to_crop,
)


def _person(cx: float, ground: float, scale: float) -> Person:
    return Person(body=on_ground(build_body((cx, 0.0), bone_lengths(scale)), ground)
                  .astype(np.float32))


def test_person_box_has_the_working_aspect_and_covers_the_person():
    p = _person(1500.0, 900.0, 120.0)  # in a 1080x1920 frame
    box = person_box((1080, 1920), points=p, margin=0.1)
    assert abs(box.width / box.height - WORKING_HW[1] / WORKING_HW[0]) < 1.0 / box.height
    pts = p.body[p.body[:, 2] > 0, :2]
    span = np.ptp(pts, axis=0).max()
    assert box.x0 <= pts[:, 0].min() - 0.1 * span + 1 and box.x1 >= pts[:, 0].max() + 0.1 * span
    assert box.y0 <= pts[:, 1].min() - 0.1 * span + 1 and box.y1 >= pts[:, 1].max() + 0.1 * span
    # centred on the person
    assert abs((box.x0 + box.x1) / 2 - (pts[:, 0].min() + pts[:, 0].max() + 1) / 2) <= 1.0
    # a wide person (arms out) makes the box taller, never squashes it
    wide = np.array([[100, 500, 1], [900, 520, 1]], float)
    box = person_box((1080, 1920), points=wide, margin=0.0, out_hw=(512, 320))
    assert box.width >= 800 and box.height == pytest.approx(box.width * 512 / 320, abs=1)
    # mask and keypoints together: the union
    mask = np.zeros((1080, 1920), np.float32)
    mask[100:200, 50:80] = 1
    box2 = person_box((1080, 1920), points=p, mask=mask)
    assert box2.x0 <= 50 and box2.y0 <= 100


def test_person_box_errors():
    with pytest.raises(ValueError, match="no person to crop"):
        person_box((64, 64), points=np.zeros((18, 3)), mask=np.zeros((64, 64)))
    with pytest.raises(ValueError, match="does not match the frame"):
        person_box((64, 64), mask=np.ones((32, 32)))
    with pytest.raises(ValueError, match="empty crop box"):
        CropBox(5, 5, 5, 9)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("box", [CropBox(40, 30, 140, 190), CropBox(-20, -35, 60, 93),
                                 CropBox(450, 250, 530, 378)])
def test_round_trip_at_the_box_size_is_exact(dtype, box):
    rng = np.random.default_rng(0)
    full = rng.integers(0, 256, (300, 500, 3)).astype(dtype)
    if dtype == np.float32:
        full /= 255.0
    crop = crop_to_box(full, box, None)
    assert crop.shape == (box.height, box.width, 3) and crop.dtype == full.dtype
    back = paste_back(full, crop, box)
    assert back.dtype == full.dtype and np.array_equal(back, full)
    # a mask of ones and of zeros are exact too
    ones = np.ones(crop.shape[:2], np.float32)
    assert np.array_equal(paste_back(full, crop, box, ones), full)
    changed = paste_back(full, np.zeros_like(crop), box, np.zeros_like(ones))
    assert np.array_equal(changed, full)


def test_round_trip_through_the_working_size():
    yy, xx = np.mgrid[:400, :600]
    full = np.stack([np.sin(xx / 25.0), np.cos(yy / 30.0), np.sin((xx + yy) / 40.0)], -1)
    full = ((full + 1) * 127.5).astype(np.uint8)
    box = CropBox(200, 50, 350, 290)  # 150 x 240 -> 320 x 512 (aspect exact)
    crop = crop_to_box(full, box)
    assert crop.shape == (512, 320, 3)
    back = paste_back(full, crop, box)
    inside = back[50:290, 200:350].astype(float) - full[50:290, 200:350]
    psnr = 10 * np.log10(255 ** 2 / np.mean(inside ** 2))
    assert psnr > 35, psnr
    outside = np.ones(full.shape[:2], bool)
    outside[50:290, 200:350] = False
    assert np.array_equal(back[outside], full[outside])


def test_paste_back_through_a_mask_touches_only_the_mask():
    full = np.full((120, 160, 3), 50, np.uint8)
    box = CropBox(20, 10, 100, 138)  # reaches below the frame
    result = np.full((64, 40, 3), 200, np.uint8)
    mask = np.zeros((64, 40), np.float32)
    mask[16:48, 10:30] = 1.0
    out = paste_back(full, result, box, mask)
    # mask region (scaled by 2 into the box) gets the result, everything else stays 50
    assert (out[10 + 34:10 + 94, 20 + 22:20 + 58] == 200).all()
    # (bilinear upsampling of the mask edge reaches one pixel further)
    assert (out[:10] == 50).all() and (out[:, :39] == 50).all() and (out[:, 81:] == 50).all()
    assert set(np.unique(out)) <= set(range(50, 201))
    # soft mask: a half blend
    half = paste_back(full, result, box, np.full((64, 40), 0.5, np.float32))
    assert (half[20:100, 30:90] == 125).all()
    with pytest.raises(ValueError, match="mask"):
        paste_back(full, result, box, np.ones((10, 10), np.float32))


def test_padding_modes_and_gray():
    full = np.arange(100, dtype=np.float32).reshape(10, 10)
    box = CropBox(-2, -2, 4, 4)
    const = crop_to_box(full, box, None, pad_value=-1)
    assert const[0, 0] == -1 and const[2, 2] == full[0, 0]
    edge = crop_to_box(full, box, None, pad="edge")
    assert edge[0, 0] == full[0, 0] and edge[5, 5] == full[3, 3]
    assert np.array_equal(paste_back(full, const, box), full)  # the in-frame part is exact
    assert crop_to_box(full, CropBox(20, 20, 30, 30), (4, 4)).max() == 0  # fully outside


def test_keypoints_follow_the_crop():
    box = CropBox(100, 40, 250, 280)
    pts = np.array([[120.0, 60.0, 1.0], [180.5, 200.25, 0.7], [249.0, 279.0, 1.0]])
    crop_pts = points_to_crop(pts, box)
    np.testing.assert_allclose(points_from_crop(crop_pts, box), pts, atol=1e-9)
    assert crop_pts[1, 2] == 0.7
    # a bright dot in the frame lands where points_to_crop says
    full = np.zeros((300, 400), np.float32)
    full[150:153, 170:173] = 1.0  # centre (171, 151)
    crop = crop_to_box(full, box)
    ys, xs = np.nonzero(crop > 0.05)
    w = crop[ys, xs]
    centroid = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
    want = points_to_crop(np.array([[171.0, 151.0]]), box)[0]
    np.testing.assert_allclose(centroid, want, atol=0.6)


def test_big_target_photo_is_cropped_without_distortion():
    """A 3000x4000 photo: the person box resizes with one scale for x and y."""
    p = _person(1500.0, 3600.0, 700.0)
    box = person_box((4000, 3000), points=p)
    sx, sy = WORKING_HW[1] / box.width, WORKING_HW[0] / box.height
    assert abs(sx / sy - 1) < 0.005
    photo = np.zeros((4000, 3000, 3), np.uint8)
    crop = crop_to_box(photo, box)
    assert crop.shape == (512, 320, 3)
    mapped = points_to_crop(p.body, box)[p.body[:, 2] > 0]
    assert (mapped[:, 0] > 0).all() and (mapped[:, 0] < 320).all()
    assert (mapped[:, 1] > 0).all() and (mapped[:, 1] < 512).all()
