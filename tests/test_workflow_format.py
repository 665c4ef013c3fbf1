"""API <-> UI workflow conversion used to build and test the shipped workflows."""

from __future__ import annotations

from workflow_format import api_to_ui, node_defs_from_classes, ui_to_api

from dance_reenact.nodes import NODE_CLASS_MAPPINGS


def test_api_ui_round_trip_keeps_links_and_widget_values():
    defs = node_defs_from_classes(NODE_CLASS_MAPPINGS)
    api = {
        "1": {"class_type": "DanceReenactLoadMotionClip",
              "inputs": {"motion": "upper_body_dance", "max_frames": 12}},
        "2": {"class_type": "DanceReenactRenderPose",
              "inputs": {"pose_keypoint": ["1", 0], "people": "largest", "person_index": 0,
                         "draw_body": True, "draw_hands": False, "draw_face": True,
                         "width": 0, "height": 0}},
        "3": {"class_type": "CreateVideo", "inputs": {"images": ["2", 0], "fps": ["1", 1]}},
        "4": {"class_type": "SaveVideo", "inputs": {"video": ["3", 0],
                                                    "filename_prefix": "dance/out",
                                                    "format": "mp4", "codec": "h264"}},
        "5": {"class_type": "LoadImage", "inputs": {"image": "astronaut.png"}},
    }
    ui = api_to_ui(api, defs, notes=[("hello", (0, 0))])
    assert ui["version"] == 0.4 and len(ui["links"]) == 4
    fps_link = [link for link in ui["links"] if link[3] == 3 and link[5] == "FLOAT"]
    assert fps_link and fps_link[0][1] == 1 and fps_link[0][2] == 1
    create = next(n for n in ui["nodes"] if n["type"] == "CreateVideo")
    assert {"name": "fps", "type": "FLOAT", "link": fps_link[0][0],
            "widget": {"name": "fps"}} in create["inputs"]
    load = next(n for n in ui["nodes"] if n["type"] == "LoadImage")
    assert load["widgets_values"] == ["astronaut.png", "image"]
    assert any(n["type"] == "Note" for n in ui["nodes"])
    back = ui_to_api(ui, defs)
    back["3"]["inputs"].pop("fps")  # linked widget keeps a placeholder, the link wins
    api["3"]["inputs"].pop("fps")
    assert back["3"]["inputs"] == api["3"]["inputs"]
    for nid in ("1", "2", "4", "5"):
        assert back[nid] == api[nid], nid
