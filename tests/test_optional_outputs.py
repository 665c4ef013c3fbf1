"""Video-sized outputs nothing reads are not made: ComfyUI keeps every output of every node, so
an unconnected preview costs as much as the video. The switches keep the main outputs
identical, and the shipped workflows turn them off exactly where no link reads them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from dance_reenact.models.core.schema import people_to_frame
from dance_reenact.nodes.blend import MaskBlend
from dance_reenact.nodes.perception import DensePoseNode, OpenPose
from dance_reenact.training import synthetic as S

ROOT = Path(__file__).resolve().parents[1]


def test_mask_blend_without_foreground_outputs_gives_the_same_image():
    z = torch.rand(5, 24, 32, 3)
    m = torch.rand(5, 24, 32)
    bg = torch.rand(1, 40, 40, 3)
    full = MaskBlend().blend(z, m, bg)
    lean = MaskBlend().blend(z, m, bg, foreground_outputs=False)
    assert torch.equal(full[0], lean[0])
    assert full[1].shape == (5, 24, 32, 4) and full[2].shape == (5, 24, 32)
    assert lean[1].shape == (1, 24, 32, 4) and lean[2].shape == (1, 24, 32)
    assert float(lean[1].abs().sum()) == 0.0


def test_densepose_and_openpose_skip_their_drawings_when_asked():
    body = S.random_body(np.random.default_rng(1))
    frames = [S.render(body, S.random_pose(np.random.default_rng(k), body), 96, 64, seed=k)
              for k in range(3)]
    image = torch.from_numpy(np.stack([f.image for f in frames])).float() / 255
    poses = [people_to_frame([f.person], 64, 96) for f in frames]
    on = DensePoseNode().estimate(image, pose_keypoint=poses)
    off = DensePoseNode().estimate(image, pose_keypoint=poses, draw_preview=False)
    assert torch.equal(on[0].index, off[0].index) and torch.equal(on[0].u, off[0].u)
    assert on[1].shape == (3, 96, 64, 3) and off[1].shape == (1, 96, 64, 3)
    pose_on = OpenPose().detect(image)
    pose_off = OpenPose().detect(image, draw_stick_figure=False)
    assert pose_on[0] == pose_off[0] and torch.equal(pose_on[2], pose_off[2])
    assert pose_on[1].shape[0] == 3 and pose_off[1].shape[0] == 1


def test_shipped_workflows_switch_off_exactly_the_unread_outputs():
    from build_workflows import OPTIONAL_OUTPUTS  # scripts/ is on the path (conftest)

    for path in sorted((ROOT / "workflows").glob("*.json")):
        ui = json.loads(path.read_text())
        read = {(link[1], link[2]) for link in ui["links"]}  # (origin id, origin slot)
        for node in ui["nodes"]:
            switches = OPTIONAL_OUTPUTS.get(node["type"])
            if not switches:
                continue
            for (switch, slots), value in zip(switches.items(), node["widgets_values"][-1:]):
                wanted = any((node["id"], s) in read for s in slots)
                assert value is wanted, (path.name, node["type"], switch)
    offline = json.loads((ROOT / "workflows" / "offline_weightless.json").read_text())
    assert all(n["widgets_values"][-1] is False for n in offline["nodes"]
               if n["type"] in OPTIONAL_OUTPUTS)
