"""Build the shipped ComfyUI workflows (``workflows/*.json``, the UI format the editor saves).

Each workflow is written here as an API prompt (node ids, class types, inputs, links) plus a
layout (column, title) and notes, and converted with :func:`workflow_format.api_to_ui`.
Every widget gets a value: ours from the node's INPUT_TYPES default unless set here, so the
graph loads in ComfyUI without "missing value" warnings. Run ``python scripts/build_workflows.py``
after changing a node's inputs; ``tests/test_workflows.py`` fails when the committed JSON and
this script disagree.

Video goes in and out through ComfyUI's core nodes (LoadVideo -> GetVideoComponents,
CreateVideo -> SaveVideo); no other pack is needed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from workflow_format import _inputs, _is_widget, api_to_ui, node_defs_from_classes  # noqa: E402

logger = logging.getLogger("build_workflows")

COLUMN_X = 380  # pixels between layout columns
GAP_Y = 50  # pixels between nodes stacked in a column
TOP_Y = 240  # first node row (notes go above)
NODE_W = 330


def _node_classes() -> Mapping[str, type]:
    """This checkout's node classes (not another installed copy of the pack)."""
    import importlib
    import importlib.util

    try:
        pack = importlib.import_module("dance_reenact")
        mine = Path(pack.__file__).resolve().parent == ROOT
    except ImportError:
        mine = False
    if not mine:
        spec = importlib.util.spec_from_file_location(
            "dance_reenact", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["dance_reenact"] = module
        spec.loader.exec_module(module)
    return importlib.import_module("dance_reenact.nodes").NODE_CLASS_MAPPINGS


def _default(kind: Any, opts: Mapping[str, Any]) -> Any:
    if "default" in opts:
        return opts["default"]
    if isinstance(kind, list):
        return kind[0] if kind else ""
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(kind)


# Node -> {boolean widget: output slots it fills}: switched off where no link reads them.
OPTIONAL_OUTPUTS: dict[str, dict[str, tuple[int, ...]]] = {
    "DanceReenactOpenPose": {"draw_stick_figure": (1,)},
    "DanceReenactDensePose": {"draw_preview": (1,)},
    "DanceReenactMaskBlend": {"foreground_outputs": (1, 2)},
}


class Graph:
    """An API prompt under construction, with a column layout and notes."""

    def __init__(self, defs: Mapping[str, Mapping[str, Any]]) -> None:
        self.defs = defs
        self.api: dict[str, dict[str, Any]] = {}
        self.columns: dict[str, int] = {}
        self.titles: dict[str, str] = {}
        self.notes: list[tuple[str, int]] = []  # (text, column)

    def add(self, class_type: str, column: int, title: str | None = None,
            **inputs: Any) -> str:
        """Add a node; widgets not given take the node's default. Returns its id."""
        defn = self.defs[class_type]
        full: dict[str, Any] = {}
        for name, kind, opts in _inputs(defn):
            if name in inputs:
                full[name] = inputs.pop(name)
            elif _is_widget(kind):
                full[name] = _default(kind, opts)
        if inputs:
            raise KeyError(f"{class_type}: unknown inputs {sorted(inputs)}")
        nid = str(len(self.api) + 1)
        self.api[nid] = {"class_type": class_type, "inputs": full}
        self.columns[nid] = column
        if title:
            self.titles[nid] = title
        return nid

    def note(self, column: int, text: str) -> None:
        self.notes.append((text.strip(), column))

    def report(self, column: int, source: str, slot: int, title: str) -> str:
        """A core Preview Any node showing a report STRING (what a node skipped or degraded)
        next to the node that wrote it."""
        return self.add("PreviewAny", column, f"Report: {title}", source=[source, slot])

    def _height(self, nid: str) -> int:
        if self.api[nid]["class_type"] == "PreviewAny":
            return 150  # room for a few lines of text
        defn = self.defs[self.api[nid]["class_type"]]
        inputs = self.api[nid]["inputs"]
        slots = sum(1 for name, kind, _ in _inputs(defn)
                    if not _is_widget(kind) or isinstance(inputs.get(name), list))
        widgets = sum(1 for name, kind, _ in _inputs(defn) if _is_widget(kind))
        upload = any(o.get("image_upload") or o.get("video_upload")
                     for _, _, o in _inputs(defn))
        return 26 + 22 * max(slots, len(defn["output"])) + 26 * widgets + (260 if upload else 0)

    def switch_off_unused_outputs(self) -> None:
        """Video-sized outputs nothing reads are not made: ComfyUI keeps every output of every
        node in memory, so an unconnected preview costs as much as the video itself."""
        used = {(v[0], v[1]) for node in self.api.values() for v in node["inputs"].values()
                if isinstance(v, list) and len(v) == 2}
        for nid, node in self.api.items():
            for switch, slots in OPTIONAL_OUTPUTS.get(node["class_type"], {}).items():
                if not any((nid, slot) in used for slot in slots):
                    node["inputs"][switch] = False

    def to_ui(self) -> dict[str, Any]:
        self.switch_off_unused_outputs()
        positions: dict[str, tuple[float, float]] = {}
        heights: dict[str, int] = {}
        next_y: dict[int, float] = {}
        for nid in self.api:
            col = self.columns[nid]
            y = next_y.get(col, TOP_Y)
            positions[nid] = (40.0 + COLUMN_X * col, float(y))
            heights[nid] = self._height(nid)
            next_y[col] = y + heights[nid] + GAP_Y
        note_y: dict[int, float] = {}
        notes = []
        for text, col in self.notes:
            y = note_y.get(col, 20.0)
            notes.append((text, (40.0 + COLUMN_X * col, y)))
            note_y[col] = y - 1000.0  # a second note in a column goes further up
        ui = api_to_ui(self.api, self.defs, positions=positions, titles=self.titles,
                       notes=notes)
        for node in ui["nodes"]:
            if node["type"] == "Note":
                node["size"] = [NODE_W, 190]
            else:
                node["size"] = [NODE_W, heights[str(node["id"])]]
        return ui


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------

WEIGHTLESS = {"pose": "mediapipe", "parse": "geometric", "densepose": "weightless",
              "p2b": "warp", "appearance": "weightless", "b2f": "warp",
              "inpaint": "patchmatch", "face": "warp"}
LEARNED = {"pose": "dwpose", "parse": "schp_lip", "densepose": "densepose_r50",
           "p2b": "local", "appearance": "pretrained", "b2f": "local", "inpaint": "lama",
           "face": "local"}
LOCAL_FILES = {"p2b": "p2b.safetensors", "b2f": "b2f.safetensors",
               "face": "face_refine.safetensors"}


def _inputs_column(g: Graph, target_title: str = "Target photo") -> dict[str, str]:
    target = g.add("LoadImage", 0, target_title, image="target.png")
    video = g.add("LoadVideo", 0, "Driver video", file="driver.mp4")
    parts = g.add("GetVideoComponents", 0, "Driver frames, audio, fps", video=[video, 0])
    return {"target": target, "frames": parts}


def _pipeline(g: Graph, src: dict[str, str], b: Mapping[str, str], *,
              target_image: list | None = None,
              target_pose: list | None = None) -> dict[str, str]:
    """Perception, P2B and B2F: returns node ids. ``target_image``/``target_pose`` replace
    the photo and its OpenPose (e.g. from Best Appearance Frame)."""
    ids: dict[str, str] = {}
    image = target_image or [src["target"], 0]
    frames = [src["frames"], 0]
    if target_pose is None:
        ids["pose_t"] = g.add("DanceReenactOpenPose", 1, "OpenPose (target photo)",
                              image=image, backend=b["pose"])
        target_pose = [ids["pose_t"], 0]
    ids["pose_d"] = g.add("DanceReenactOpenPose", 1, "OpenPose (driver video)", image=frames,
                          backend=b["pose"])
    ids["smooth"] = g.add("DanceReenactSmoothPose", 2, "Smooth Pose (driver)",
                          pose_keypoint=[ids["pose_d"], 0], fps=[src["frames"], 2])
    dpose = [ids["smooth"], 0]
    # SCHP parses the person's keypoint box (with a margin for hair): sharper for a person
    # who is small in the photo, and nothing outside the person is labelled.
    crop = {"crop_to_person": True} if b["parse"] == "schp_lip" else {}
    ids["parse"] = g.add("DanceReenactHumanParse", 2, "Human Parse (target photo)",
                         image=image, backend=b["parse"], pose_keypoint=target_pose, **crop)
    dense_kw: dict[str, Any] = {}
    if b["densepose"] == "weightless":
        dense_kw = {"pose_keypoint": [ids["smooth"], 0], "person_mask": [ids["pose_d"], 2]}
    ids["dense"] = g.add("DanceReenactDensePose", 2, "DensePose (driver video)", image=frames,
                         backend=b["densepose"], **dense_kw)
    p2b_kw = {"local_file": LOCAL_FILES["p2b"]} if b["p2b"] == "local" else {}
    ids["p2b_model"] = g.add("DanceReenactP2BLoader", 3, "P2B Loader", backend=b["p2b"],
                             **p2b_kw)
    ids["p2b"] = g.add("DanceReenactP2B", 3, "P2B: target parsing in the driver's pose",
                       p2b_model=[ids["p2b_model"], 0], target_parsing=[ids["parse"], 0],
                       target_pose=target_pose, driver_pose=dpose,
                       driver_densepose=[ids["dense"], 0], missing_person="hold")
    ids["crop"] = g.add("DanceReenactPartCropper", 4, "Part Cropper (target photo)",
                        image=image, parsing=[ids["parse"], 0], pose_keypoint=target_pose)
    ids["app"] = g.add("DanceReenactAppearanceEncoder", 4, "Appearance Encoder (once)",
                       parts=[ids["crop"], 0], backend=b["appearance"])
    b2f_kw = {"local_file": LOCAL_FILES["b2f"]} if b["b2f"] == "local" else {}
    ids["b2f_model"] = g.add("DanceReenactB2FLoader", 5, "B2F Loader", backend=b["b2f"],
                             **b2f_kw)
    ids["b2f"] = g.add("DanceReenactB2F", 5, "B2F: the target's frame z and mask m",
                       b2f_model=[ids["b2f_model"], 0], parsing=[ids["p2b"], 0],
                       appearance=[ids["app"], 0], driver_pose=dpose)
    ids["stab"] = g.add("DanceReenactStabilizeMask", 6, "Stabilize Mask",
                        mask=[ids["b2f"], 1], image=[ids["b2f"], 0])
    _pipeline_reports(g, ids)
    return ids


def _pipeline_reports(g: Graph, ids: dict[str, str]) -> None:
    """Preview Any nodes for the reports of the perception and rendering nodes.

    They also order the run: ComfyUI picks, among the ready nodes, an output node first, then
    a node one or two links from an output (comfy_execution/graph.py ux_friendly_pick_node).
    The target photo's OpenPose feeds a Preview Any directly, so its checks (a person? how
    big?) run before the driver video is decoded (tests/test_workflows.py checks it)."""
    if "pose_t" in ids:
        g.report(1, ids["pose_t"], 4, "target photo's person")
    g.report(1, ids["pose_d"], 4, "driver frames without a person")
    if "smooth" in ids:
        g.report(2, ids["smooth"], 1, "pose smoothing")
    if "ret" in ids:
        g.report(2, ids["ret"], 1, "retargeting")
    g.report(4, ids["crop"], 2, "target parts not found")
    g.report(5, ids["b2f"], 2, "B2F frames held or empty")
    g.report(3, ids["parse"], 3, "target parsing")
    if "dense" in ids:
        g.report(3, ids["dense"], 2, "DensePose frames without a person")
    g.report(4, ids["p2b"], 1, "P2B frames held or empty")


def _finish(g: Graph, src: dict[str, str], ids: dict[str, str], b: Mapping[str, str],
            background: list, prefix: str, column: int = 7, **blend: Any) -> dict[str, str]:
    """Mask Blend over ``background``, FaceRefine, and the video out (with the driver's
    audio and frame rate)."""
    ids["blend"] = g.add("DanceReenactMaskBlend", column, "Mask Blend f0 = z*m + b*(1-m)",
                         image=[ids["b2f"], 0], mask=[ids["stab"], 0], background=background,
                         **blend)
    face_kw = {"local_file": LOCAL_FILES["face"]} if b["face"] == "local" else {}
    ids["face_model"] = g.add("DanceReenactLoadFaceRefine", column + 1, "Load FaceRefine",
                              backend=b["face"], **face_kw)
    ids["face"] = g.add("DanceReenactFaceRefine", column + 1, "FaceRefine",
                        face_model=[ids["face_model"], 0], frames=[ids["blend"], 0],
                        target=[src["target"], 0], parsing=[ids["p2b"], 0])
    g.report(column + 1, ids["face"], 2, "FaceRefine")
    ids["video"] = g.add("CreateVideo", column + 2, "Create video (driver fps + audio)",
                         images=[ids["face"], 0], fps=[src["frames"], 2],
                         audio=[src["frames"], 1])
    ids["save"] = g.add("SaveVideo", column + 2, "Save video", video=[ids["video"], 0],
                        filename_prefix=f"dance_reenact/{prefix}", format="mp4", codec="h264")
    return ids


def _target_plate(g: Graph, src: dict[str, str], ids: dict[str, str], backend: str,
                  column: int = 6, image: list | None = None) -> str:
    plate = g.add("DanceReenactInpaint", column, "Inpaint: the target photo without the "
                  "person", image=image or [src["target"], 0], backend=backend, dilate=12,
                  mask=[ids["parse"], 2])
    g.report(column, plate, 1, "target background inpainting")
    return plate


# --------------------------------------------------------------------------------------------
# The workflows
# --------------------------------------------------------------------------------------------

def full_method(defs: Mapping[str, Any]) -> dict[str, Any]:
    g = Graph(defs)
    src = _inputs_column(g)
    ids = _pipeline(g, src, LEARNED)
    plate = _target_plate(g, src, ids, "lama")
    _finish(g, src, ids, LEARNED, [plate, 0], "full_method")
    g.note(0, """
Full method (Gafni et al. 2021) with the learned backends.
1. Load the target photo (one person, whole body is best) and the driver video.
2. DWPose, SCHP LIP (CC BY-NC-SA: non-commercial), DensePose R50, VGGFace2/VGG19 and
   big-LaMa download once through the weight registry (models/dance_reenact).
3. Nobody publishes P2B / B2F / FaceRefine weights: train them with `reenact train p2b|b2f|face`
   and put p2b.safetensors, b2f.safetensors, face_refine.safetensors in models/dance_reenact
   (or switch the loaders to 'hub' and type your repo, or to 'warp'/'weightless').
""")
    g.note(3, """
P2B and B2F run at their working resolution around the person and paste back at the driver
frame's size and position: any target size/aspect works. missing_person=hold repeats the
previous frame when the driver leaves the picture.
""")
    g.note(7, """
Background: the target photo with the person inpainted (LaMa). For another background use
background_swap.json; for the driver's own background driver_background.json.
Stabilize Mask removes mask flicker (enabled=false to compare).
""")
    return g.to_ui()


def background_swap(defs: Mapping[str, Any]) -> dict[str, Any]:
    g = Graph(defs)
    src = _inputs_column(g)
    ids = _pipeline(g, src, WEIGHTLESS)
    bg_image = g.add("LoadImage", 6, "Background still (connected)", image="background.png")
    bg_video = g.add("LoadVideo", 6, "Background video (optional)", file="background.mp4")
    g.add("GetVideoComponents", 6, "Background video frames", video=[bg_video, 0])
    _finish(g, src, ids, WEIGHTLESS, [bg_image, 0], "background_swap", length_mode="loop",
            fit="cover")
    g.add("SaveImage", 8, "Save foreground RGBA frames (PNG)", images=[ids["blend"], 1],
          filename_prefix="dance_reenact/foreground_rgba/frame")
    g.note(0, """
Background swap (weightless backends: runs anywhere, nothing to download).
Change the background and queue again: only Mask Blend and what follows re-run; poses,
parsing, P2B, B2F and the appearance stay cached because their inputs did not change.
""")
    g.note(6, """
A still is connected. For a video background drag the 'images' output of 'Background video
frames' onto Mask Blend's 'background' (it loops, holds the last frame or trims: length_mode;
fit: cover / contain / stretch). The person with alpha is also saved as RGBA PNGs for
compositing in other software.
""")
    return g.to_ui()


def driver_background(defs: Mapping[str, Any]) -> dict[str, Any]:
    g = Graph(defs)
    src = _inputs_column(g)
    ids = _pipeline(g, src, WEIGHTLESS)
    plate = g.add("DanceReenactInpaint", 6, "Inpaint: the driver video without the driver",
                  image=[src["frames"], 0], backend="video_median", dilate=6, output="video",
                  mask=[ids["pose_d"], 2])
    g.report(6, plate, 1, "driver clean plate")
    _finish(g, src, ids, WEIGHTLESS, [plate, 0], "driver_background", length_mode="trim")
    g.note(0, """
Driver background (paper Fig. 9c): the target dances in the driver's own scene. The driver is
removed with a temporal median clean plate (video_median: each pixel from the frames where it
is uncovered), which keeps the scene's light and the driver's shadows (dilate: keep it small).
""")
    g.note(6, """
A static camera works best for video_median. Pixels the driver never uncovers are filled by
OpenCV inpainting (radius). For a moving camera use backend=lama (per frame).
""")
    return g.to_ui()


def preprocessing(defs: Mapping[str, Any]) -> dict[str, Any]:
    g = Graph(defs)
    video = g.add("LoadVideo", 0, "Video", file="driver.mp4")
    src = g.add("GetVideoComponents", 0, "Frames, audio, fps", video=[video, 0])
    frames = [src, 0]
    pose = g.add("DanceReenactOpenPose", 1, "OpenPose", image=frames)
    smooth = g.add("DanceReenactSmoothPose", 1, "Smooth Pose", pose_keypoint=[pose, 0],
                   fps=[src, 2])
    g.report(1, pose, 4, "frames without a person")
    g.report(1, smooth, 1, "pose smoothing")
    stick = g.add("DanceReenactRenderPose", 2, "Render Pose (smoothed stick figures)",
                  pose_keypoint=[smooth, 0])
    dense = g.add("DanceReenactDensePose", 2, "DensePose", image=frames,
                  pose_keypoint=[smooth, 0], person_mask=[pose, 2])
    parse = g.add("DanceReenactHumanParse", 2, "Human Parse", image=frames,
                  pose_keypoint=[smooth, 0])
    g.report(3, dense, 2, "DensePose frames without a person")
    g.report(3, parse, 3, "parsing")
    face = g.add("DanceReenactParsingPreview", 3, "Parsing Preview / Mask (face + hair)",
                 parsing=[parse, 0], group="face_hair")
    outputs = [("pose", [stick, 0]), ("densepose", [dense, 1]), ("parsing", [parse, 1])]
    for name, images in outputs:
        vid = g.add("CreateVideo", 4, f"Create video ({name})", images=images, fps=[src, 2])
        g.add("SaveVideo", 4, f"Save {name} video", video=[vid, 0],
              filename_prefix=f"dance_reenact/conditioning/{name}", format="mp4",
              codec="h264")
    for name, mask in (("person_mask", [parse, 2]), ("face_mask", [face, 1])):
        img = g.add("MaskToImage", 5, f"{name} as image", mask=mask)
        g.add("SaveImage", 5, f"Save {name} frames (PNG)", images=[img, 0],
              filename_prefix=f"dance_reenact/conditioning/{name}")
    g.note(0, """
Preprocessing only: conditioning for other generative nodes (ControlNet OpenPose/DensePose,
segmentation, inpainting masks). The pose, DensePose and parsing outputs are IMAGE/MASK
batches: connect them to ControlNet Apply or an inpainting node instead of saving.
""")
    g.note(2, """
Backends: weightless here (mediapipe, keypoint DensePose, geometric parsing). For the learned
ones set OpenPose to dwpose/openpose, DensePose to densepose_r50 and Human Parse to schp_lip
(non-commercial licence). mask_group / group pick which labels a mask covers.
""")
    return g.to_ui()


def offline_weightless(defs: Mapping[str, Any]) -> dict[str, Any]:
    g = Graph(defs)
    src = _inputs_column(g)
    ids = _pipeline(g, src, WEIGHTLESS)
    plate = _target_plate(g, src, ids, WEIGHTLESS["inpaint"])
    _finish(g, src, ids, WEIGHTLESS, [plate, 0], "offline")
    g.note(0, """
The whole method without any download (pip install 'mediapipe==0.10.21'): MediaPipe poses,
geometric parsing, keypoint DensePose, warp P2B/B2F (the target's own pixels moved part by
part), PatchMatch inpainting and the weightless FaceRefine. Output: the driver video's size.
""")
    g.note(3, """
Options: a target VIDEO instead of a photo -> target_video.json (Best Appearance Frame picks
the most frontal, complete frame). The target dancing in its own photo with the driver's motion
moved onto its body (Retarget Pose: target limb lengths, feet on its ground line) ->
retarget_in_photo.json.
""")
    return g.to_ui()


def long_video_streamed(defs: Mapping[str, Any]) -> dict[str, Any]:
    g = Graph(defs)
    target = g.add("LoadImage", 0, "Target photo", image="target.png")
    video = g.add("LoadVideo", 0, "Driver video", file="driver.mp4")
    run = g.add("DanceReenactReenactStreamed", 1, "Reenact (all-in-one, streamed)",
                target=[target, 0], driver=[video, 0])
    g.report(1, run, 1, "Reenact")
    g.add("SaveVideo", 2, "Save video", video=[run, 0],
          filename_prefix="dance_reenact/streamed", format="auto", codec="auto")
    g.note(0, """
The offline_weightless method in ONE node for long videos: the driver is read frame by frame
and the result written straight to an MP4, so memory does not grow with the video (a 10 s
1080p driver would need several float copies as a graph of stages). Same stages and defaults
as offline_weightless.json and the reenact CLI. Save Video copies the MP4 (auto/auto: no
re-encode). The driver's audio is copied.
""")
    return g.to_ui()


def target_video(defs: Mapping[str, Any]) -> dict[str, Any]:
    g = Graph(defs)
    tvideo = g.add("LoadVideo", 0, "Target video", file="target.mp4")
    tframes = g.add("GetVideoComponents", 0, "Target frames", video=[tvideo, 0])
    video = g.add("LoadVideo", 0, "Driver video", file="driver.mp4")
    frames = g.add("GetVideoComponents", 0, "Driver frames, audio, fps", video=[video, 0])
    tpose = g.add("DanceReenactOpenPose", 1, "OpenPose (target video)", image=[tframes, 0],
                  backend="mediapipe", on_no_person="empty")
    best = g.add("DanceReenactBestAppearanceFrame", 1, "Best Appearance Frame",
                 video=[tframes, 0], pose_keypoint=[tpose, 0])
    g.report(1, tpose, 4, "target frames without a person")
    g.report(1, best, 3, "best target frames and scores")
    src = {"target": best, "frames": frames}
    ids = _pipeline(g, src, WEIGHTLESS, target_image=[best, 0], target_pose=[best, 2])
    plate = _target_plate(g, src, ids, WEIGHTLESS["inpaint"], image=[best, 0])
    _finish(g, src, ids, WEIGHTLESS, [plate, 0], "target_video")
    g.note(0, """
Target from a VIDEO: Best Appearance Frame scores every frame (keypoint confidence x
completeness x frontality) and passes the best frame and its pose on as the target photo.
Its 'scores' output lists the top frames. Weightless backends; switch as in full_method.json.
""")
    return g.to_ui()


def retarget_in_photo(defs: Mapping[str, Any]) -> dict[str, Any]:
    g = Graph(defs)
    src = _inputs_column(g)
    pose_t = g.add("DanceReenactOpenPose", 1, "OpenPose (target photo)",
                   image=[src["target"], 0])
    pose_d = g.add("DanceReenactOpenPose", 1, "OpenPose (driver video)",
                   image=[src["frames"], 0])
    smooth = g.add("DanceReenactSmoothPose", 2, "Smooth Pose (driver)",
                   pose_keypoint=[pose_d, 0], fps=[src["frames"], 2])
    retarget = g.add("DanceReenactRetargetPose", 2, "Retarget Pose onto the target",
                     target_pose=[pose_t, 0], driver_pose=[smooth, 0])
    # No DensePose here: the retargeted poses live on the target's canvas (warp P2B needs
    # only keypoints).
    ids: dict[str, str] = {"pose_t": pose_t, "pose_d": pose_d, "smooth": smooth, "ret": retarget}
    b = WEIGHTLESS
    tpose, dpose = [pose_t, 0], [retarget, 0]
    ids["parse"] = g.add("DanceReenactHumanParse", 3, "Human Parse (target photo)",
                         image=[src["target"], 0], pose_keypoint=tpose)
    ids["p2b_model"] = g.add("DanceReenactP2BLoader", 3, "P2B Loader", backend=b["p2b"])
    ids["p2b"] = g.add("DanceReenactP2B", 3, "P2B (on the target's canvas)",
                       p2b_model=[ids["p2b_model"], 0], target_parsing=[ids["parse"], 0],
                       target_pose=tpose, driver_pose=dpose, missing_person="hold")
    ids["crop"] = g.add("DanceReenactPartCropper", 4, "Part Cropper", image=[src["target"], 0],
                        parsing=[ids["parse"], 0], pose_keypoint=tpose)
    ids["app"] = g.add("DanceReenactAppearanceEncoder", 4, "Appearance Encoder",
                       parts=[ids["crop"], 0], backend=b["appearance"])
    ids["b2f_model"] = g.add("DanceReenactB2FLoader", 5, "B2F Loader", backend=b["b2f"])
    ids["b2f"] = g.add("DanceReenactB2F", 5, "B2F", b2f_model=[ids["b2f_model"], 0],
                       parsing=[ids["p2b"], 0], appearance=[ids["app"], 0], driver_pose=dpose)
    ids["stab"] = g.add("DanceReenactStabilizeMask", 6, "Stabilize Mask",
                        mask=[ids["b2f"], 1], image=[ids["b2f"], 0])
    _pipeline_reports(g, ids)
    plate = _target_plate(g, src, ids, WEIGHTLESS["inpaint"])
    _finish(g, src, ids, b, [plate, 0], "retarget_in_photo")
    g.note(0, """
The target dances in its own photo: Retarget Pose moves the driver's skeleton onto the
target's body (each bone keeps the driver's direction and takes the target's length; scale
and position anchored on the first frame, feet on the target's ground line), so a tall driver
does not stretch a short target. keep_in_frame keeps the whole person inside the photo (scaled
down when the largest pose does not fit, stopped at the edge instead of walking out); its
report says what it did. The output has the target photo's size.
""")
    return g.to_ui()


WORKFLOWS = {
    "full_method.json": full_method,
    "background_swap.json": background_swap,
    "driver_background.json": driver_background,
    "preprocessing.json": preprocessing,
    "offline_weightless.json": offline_weightless,
    "long_video_streamed.json": long_video_streamed,
    "target_video.json": target_video,
    "retarget_in_photo.json": retarget_in_photo,
}


def build_all() -> dict[str, str]:
    """{file name: JSON text} of every shipped workflow."""
    defs = node_defs_from_classes(_node_classes())
    return {name: json.dumps(make(defs), indent=1) + "\n" for name, make in WORKFLOWS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "workflows")
    parser.add_argument("--check", action="store_true",
                        help="only check the files are up to date (exit 1 if not)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    built = build_all()
    stale = [n for n, text in built.items()
             if not (args.out / n).is_file() or (args.out / n).read_text() != text]
    if args.check:
        for n in stale:
            logger.error("%s is out of date: run python scripts/build_workflows.py", n)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in built.items():
        (args.out / name).write_text(text)
        logger.info("wrote %s", args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
