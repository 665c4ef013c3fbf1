"""Part Cropper on the astronaut photo and on made-up label maps; its bad inputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from dance_reenact.models.core.schema import LABEL
from dance_reenact.models.networks.parts import CROP_SIZE, crop_parts
from dance_reenact.nodes.b2f import PartCropper
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.sockets import Parsing, rgb_uint8_to_image

# Landmarks of the astronaut's face, read off the photo (x, y): eyes, nose tip, mouth.
ASTRONAUT_FACE = {"right_eye": (200, 100), "left_eye": (246, 100), "nose": (224, 122),
                  "mouth": (222, 146)}


def astronaut_labels() -> np.ndarray:
    """A hand-made parsing of skimage's astronaut (waist-up; no legs, no shoes)."""
    lab = np.zeros((512, 512), np.uint8)
    cv2.ellipse(lab, (225, 80), (72, 62), 0, 0, 360, LABEL["hair"], -1)
    cv2.ellipse(lab, (223, 112), (46, 58), 0, 0, 360, LABEL["face"], -1)
    suit = np.array([[110, 200], [330, 200], [365, 330], [360, 512], [20, 512], [40, 280]])
    cv2.fillPoly(lab, [suit.astype(np.int32)], LABEL["upper_clothes"])
    return lab


def _box_point(box, x, y):
    x0, y0, x1, y1 = box
    s = CROP_SIZE / (x1 - x0)
    return int((x - x0) * s), int((y - y0) * s)


def test_astronaut_face_crop_contains_the_face_and_lower_parts_are_missing(astronaut):
    pc = crop_parts(astronaut, astronaut_labels())
    assert pc.crops.shape == (5, 224, 224, 3) and pc.crops.dtype == np.float32
    assert pc.names == ("face_hair", "upper_clothes", "lower_clothes", "shoes_socks", "skin")
    assert pc.present.tolist() == [True, True, False, False, False]
    assert pc.missing == ["lower_clothes", "shoes_socks", "skin"]
    for k in (2, 3, 4):  # blank crops
        assert pc.crops[k].max() == 0 and pc.boxes[k] is None
    face = pc.crops[0]
    for name, (x, y) in ASTRONAUT_FACE.items():
        cx, cy = _box_point(pc.boxes[0], x, y)
        assert 0 <= cx < 224 and 0 <= cy < 224, name
        # the crop shows the photo there (not blanked), resized from the original pixel
        orig = astronaut[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(0) / 255.0
        got = face[cy - 1:cy + 2, cx - 1:cx + 2].reshape(-1, 3).mean(0)
        assert np.abs(got - orig).max() < 0.2, name
    # the face+hair crop is mostly the head: its box is about the head's size
    x0, y0, x1, y1 = pc.boxes[0]
    assert 120 < x1 - x0 < 180
    # the background outside the head (e.g. top-left corner of the crop) is blanked
    assert face[:10, :10].max() == 0


def test_pixels_outside_the_segment_are_blanked_and_aspect_is_kept():
    img = np.full((100, 80, 3), 200, np.uint8)
    lab = np.zeros((100, 80), np.uint8)
    lab[10:90, 30:50] = LABEL["pants"]  # a tall thin 80x20 segment
    pc = crop_parts(img, lab, margin=0.0)
    crop = pc.crops[2]
    nz = np.argwhere(crop.max(-1) > 0.5)
    h = nz[:, 0].max() - nz[:, 0].min() + 1
    w = nz[:, 1].max() - nz[:, 1].min() + 1
    assert abs(h / w - 4.0) < 0.3  # 80x20 stays 4:1, padded rather than stretched
    assert h >= 220  # the long side fills the crop
    assert crop[:, :60].max() == 0 and crop[:, -60:].max() == 0  # padding is blank
    assert pc.present.tolist() == [False, False, True, False, False]


def test_node_outputs_parts_preview_and_missing_list(astronaut):
    image = rgb_uint8_to_image(astronaut)
    parsing = Parsing(torch.from_numpy(astronaut_labels())[None])
    parts, preview, missing = PartCropper().crop(image, parsing)
    assert parts.crops.shape == (1, 5, 224, 224, 3)
    assert parts.present[0].tolist() == [True, True, False, False, False]
    assert preview.shape == (1, 224, 5 * 224 + 4 * 4, 3)
    assert "lower_clothes" in missing and "shoes_socks" in missing
    assert parts.targets[0].image.shape == (512, 512, 3)
    # a half-size parsing of the same photo is resized to the image
    small = Parsing(torch.from_numpy(astronaut_labels()[::2, ::2].copy())[None])
    parts2, _, _ = PartCropper().crop(image, small)
    assert parts2.present[0].tolist() == [True, True, False, False, False]


def test_bad_inputs(astronaut):
    node = PartCropper()
    tiny = torch.rand(1, 16, 16, 3)
    with pytest.raises(NodeInputError, match=r"\[Part Cropper\] input 'image'.*16x16"):
        node.crop(tiny, Parsing(torch.ones(1, 16, 16, dtype=torch.uint8)))
    image = rgb_uint8_to_image(astronaut)
    with pytest.raises(NodeInputError, match="no person labels"):
        node.crop(image, Parsing(torch.zeros(1, 512, 512, dtype=torch.uint8)))
    with pytest.raises(NodeInputError, match="another aspect ratio"):
        node.crop(image, Parsing(torch.ones(1, 512, 256, dtype=torch.uint8)))
    with pytest.raises(NodeInputError, match="3 frames but the image has 1"):
        node.crop(image, Parsing(torch.ones(3, 512, 512, dtype=torch.uint8)))
    with pytest.raises(NodeInputError, match="input 'parsing'"):
        node.crop(image, torch.ones(1, 512, 512))


def test_astronaut_with_the_weightless_parser(astronaut):
    """The real pipeline: Human Parse (geometric, MediaPipe keypoints) -> Part Cropper."""
    from dance_reenact.models.perception.mediapipe_holistic import detect_people
    from dance_reenact.nodes.parsing import HumanParse

    image = rgb_uint8_to_image(astronaut)
    parsing, _, _, _ = HumanParse().parse(image, backend="geometric", mask_group="person")
    parts, _, missing = PartCropper().crop(image, parsing)
    present = parts.present[0].tolist()
    assert present[0] and present[1]  # face+hair, upper clothes (the suit)
    assert not present[2] and not present[3]  # waist-up: no lower clothes, no shoes
    assert parts.crops[0, 2].max() == 0 and parts.crops[0, 3].max() == 0
    assert "lower_clothes" in missing and "shoes_socks" in missing
    face = detect_people(astronaut)[0].person.face
    pc = crop_parts(astronaut, parsing.labels[0].numpy())
    for idx in (30, 36, 45, 48, 54):  # nose tip, eye corners, mouth corners
        x, y, c = face[idx]
        assert c > 0.5
        cx, cy = _box_point(pc.boxes[0], x, y)
        assert 0 <= cx < 224 and 0 <= cy < 224
        assert pc.crops[0][cy, cx].max() > 0.1, idx  # the face is there, not blanked
