"""FaceRefine and Inpaint wired with the perception nodes, run through the test executor."""

from __future__ import annotations

import torch
from executor import run_workflow

from dance_reenact.nodes import NODE_CLASS_MAPPINGS
from dance_reenact.nodes.sockets import rgb_uint8_to_image


def test_photo_clean_plate_and_face_refine_workflow(astronaut):
    photo = rgb_uint8_to_image(astronaut[::2, ::2].copy())  # 256x256
    prompt = {
        "pose": {"class_type": "DanceReenactOpenPose",
                 "inputs": {"image": photo, "backend": "mediapipe", "people": "largest",
                            "person_index": 0, "on_no_person": "error", "detect_hands": True,
                            "detect_face": True, "derive_missing_hands": True,
                            "coordinates": "pixels"}},
        "plate": {"class_type": "DanceReenactInpaint",
                  "inputs": {"image": photo, "backend": "opencv_telea", "dilate": 6,
                             "radius": 5, "output": "video", "mask": ["pose", 2]}},
        "face_model": {"class_type": "DanceReenactLoadFaceRefine",
                       "inputs": {"backend": "weightless", "landmarks": "mediapipe",
                                  "blend": "feather", "color_match": True, "feather": 0}},
        "face": {"class_type": "DanceReenactFaceRefine",
                 "inputs": {"face_model": ["face_model", 0], "frames": photo,
                            "target": photo}},
    }
    out = run_workflow(prompt, NODE_CLASS_MAPPINGS)
    mask = out["pose"][2]
    assert mask.shape == (1, 256, 256) and 0.1 < float(mask.mean()) < 0.9
    plate, _ = out["plate"]  # (image, report)
    changed = (plate != photo).any(-1)
    grown = torch.nn.functional.max_pool2d(mask[None], 13, 1, 6)[0] > 0.5  # dilate 6
    assert changed[mask > 0.5].float().mean() > 0.5 and not changed[~grown].any()
    frames, missing, _ = out["face"]
    assert missing == 0 and frames.shape == photo.shape
    # the target is the frame itself: refining it changes it only a little
    assert float((frames - photo).abs().mean()) < 0.01
