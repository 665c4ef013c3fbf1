"""The shipped workflows (``workflows/*.json``) end to end: UI graph -> API prompt -> the test
executor, through the pack's node classes plus small stand-ins for ComfyUI's core video/image
nodes. Inputs are small: the astronaut photo and a synthetic dancer moving sideways."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from executor import run_workflow
from workflow_format import node_defs_from_classes, ui_to_api

from dance_reenact.models.core.cache import model_cache
from dance_reenact.models.core.schema import BODY, LABEL
from dance_reenact.nodes import NODE_CLASS_MAPPINGS
from dance_reenact.nodes.sockets import rgb_uint8_to_image
from dance_reenact.training.synthetic import random_body, random_pose, render

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
WEIGHTLESS_FILES = ("background_swap.json", "driver_background.json", "preprocessing.json",
                    "offline_weightless.json", "target_video.json", "retarget_in_photo.json",
                    "long_video_streamed.json")


# --------------------------------------------------------------------------------------------
# Stand-ins for ComfyUI's core nodes (same sockets as comfy_extras/nodes_video.py, nodes.py)
# --------------------------------------------------------------------------------------------

@dataclass
class FakeVideo:
    frames: torch.Tensor
    fps: float
    audio: Any = None

    def get_components(self) -> Any:  # comfy_api's VideoInput.get_components()
        from types import SimpleNamespace

        return SimpleNamespace(images=self.frames, audio=self.audio, frame_rate=self.fps)


class Files:
    """What the fake loaders return, by the file name in the workflow's widget."""

    images: dict[str, torch.Tensor] = {}
    videos: dict[str, FakeVideo] = {}
    saved_videos: list[tuple[str, FakeVideo]] = []
    saved_images: list[tuple[str, torch.Tensor]] = []
    previews: list[str] = []


class FakeLoadImage:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": (sorted(Files.images), {"image_upload": True})}}

    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load"

    @classmethod
    def IS_CHANGED(cls, image):  # ComfyUI hashes the file
        return float(Files.images[image].sum())

    def load(self, image):
        img = Files.images[image]
        return img, torch.zeros(img.shape[:3])


class FakeLoadVideo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"file": (sorted(Files.videos), {"video_upload": True})}}

    RETURN_TYPES = ("VIDEO",)
    FUNCTION = "load"

    def load(self, file):
        return (Files.videos[file],)


class FakeGetVideoComponents:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"video": ("VIDEO",)}}

    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT")
    FUNCTION = "get"

    def get(self, video):
        return video.frames, video.audio, video.fps


class FakeCreateVideo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "fps": ("FLOAT", {})},
                "optional": {"audio": ("AUDIO",)}}

    RETURN_TYPES = ("VIDEO",)
    FUNCTION = "create"

    def create(self, images, fps, audio=None):
        return (FakeVideo(images, float(fps), audio),)


class FakeSaveVideo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"video": ("VIDEO",), "filename_prefix": ("STRING", {}),
                             "format": (["auto", "mp4"],), "codec": (["auto", "h264"],)}}

    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    def save(self, video, filename_prefix, format, codec):
        Files.saved_videos.append((filename_prefix, video))
        return {"ui": {}, "result": ()}


class FakeSaveImage:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {})}}

    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    def save(self, images, filename_prefix):
        Files.saved_images.append((filename_prefix, images))
        return {"ui": {}}


class FakeMaskToImage:  # ComfyUI's MaskToImage, exactly
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mask": ("MASK",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "mask_to_image"

    def mask_to_image(self, mask):
        return (mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).movedim(1, -1)
                .expand(-1, -1, -1, 3),)


class FakePreviewAny:  # comfy_extras/nodes_preview_any.py: any value shown as text
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"source": ("*", {})}}

    RETURN_TYPES = ()
    FUNCTION = "main"
    OUTPUT_NODE = True

    def main(self, source=None):
        value = source if isinstance(source, str) else repr(source)
        Files.previews.append(value)
        return {"ui": {"text": (value,)}}


CORE = {"PreviewAny": FakePreviewAny, "LoadImage": FakeLoadImage, "LoadVideo": FakeLoadVideo,
        "GetVideoComponents": FakeGetVideoComponents, "CreateVideo": FakeCreateVideo,
        "SaveVideo": FakeSaveVideo, "SaveImage": FakeSaveImage, "MaskToImage": FakeMaskToImage}
MAPPINGS = {**NODE_CLASS_MAPPINGS, **CORE}


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

@dataclass
class Driver:
    frames: torch.Tensor  # (N, H, W, 3)
    background: np.ndarray  # uint8 (H, W, 3): the scene without the dancer
    neck_x: np.ndarray  # (N,) true neck x per frame, pixels
    masks: np.ndarray  # bool (N, H, W)


def make_driver(h: int = 192, w: int = 128, n: int = 4, seed: int = 3,
                x0: float = 0.35, x1: float = 0.65) -> Driver:
    """A synthetic full-body dancer moving sideways over a textured static background."""
    rng = np.random.default_rng(seed)
    body = random_body(rng)
    pose = random_pose(rng, body)
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([60 + 80 * xx / w, 90 + 60 * yy / h, 150 - 50 * xx / w], -1)
    bg = (bg + rng.normal(0, 4, bg.shape)).clip(0, 255).astype(np.uint8)
    frames, necks, masks = [], [], []
    for cx in np.linspace(x0, x1, n):
        s = render(body, replace(pose, cx=float(cx)), h, w, background=bg, seed=0)
        frames.append(s.image)
        necks.append(s.person.body[BODY["neck"], 0])
        masks.append(s.mask)
    return Driver(rgb_uint8_to_image(np.stack(frames)), bg, np.array(necks), np.stack(masks))


@pytest.fixture(scope="module")
def driver() -> Driver:
    return make_driver()


@pytest.fixture(scope="module")
def target(astronaut) -> torch.Tensor:
    return rgb_uint8_to_image(astronaut[::2, ::2].copy())  # 256x256


def load_api(name: str) -> dict[str, dict[str, Any]]:
    ui = json.loads((WORKFLOWS / name).read_text())
    return ui_to_api(ui, node_defs_from_classes(MAPPINGS))


def run(name: str, images: dict[str, torch.Tensor], videos: dict[str, FakeVideo],
        api: dict | None = None, cache: dict | None = None) -> tuple[dict, dict]:
    Files.images, Files.videos = dict(images), dict(videos)
    Files.saved_videos, Files.saved_images, Files.previews = [], [], []
    api = api or load_api(name)
    return api, run_workflow(api, MAPPINGS, cache=cache)


def node_of(api: dict, class_type: str, index: int = 0) -> str:
    """The id of the index-th node of a class (in the graph's order)."""
    found = [nid for nid, spec in api.items() if spec["class_type"] == class_type]
    assert len(found) > index, class_type
    return found[index]


def saved_video() -> FakeVideo:
    """The one video the workflow saved."""
    assert len(Files.saved_videos) == 1, Files.saved_videos
    return Files.saved_videos[0][1]


def assert_follows_driver(mask: torch.Tensor, drv: Driver, tol: float = 0.12) -> None:
    """The rendered person's mask centroid x follows the driver's neck x, frame by frame."""
    w = mask.shape[-1]
    xs = []
    for m in mask:
        m = m.numpy()
        assert m.sum() > 50, "no person rendered in a frame"
        xs.append((m * np.arange(w)).sum() / m.sum())
    xs = np.array(xs)
    assert np.all(np.diff(xs) > 0), (xs, drv.neck_x)  # moves the same way every frame
    assert np.abs(xs - drv.neck_x).max() < tol * w, (xs, drv.neck_x)


# --------------------------------------------------------------------------------------------
# Static checks
# --------------------------------------------------------------------------------------------

def test_committed_workflows_are_what_the_script_builds():
    import build_workflows

    built = build_workflows.build_all()
    on_disk = sorted(p.name for p in WORKFLOWS.glob("*.json"))
    assert on_disk == sorted(built)
    for name, text in built.items():
        assert (WORKFLOWS / name).read_text() == text, f"{name}: run scripts/build_workflows.py"


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.json")))
def test_workflow_is_a_ui_graph_with_notes_and_core_video_io(name):
    ui = json.loads((WORKFLOWS / name).read_text())
    types = [n["type"] for n in ui["nodes"]]
    assert "Note" in types and ui["version"] == 0.4
    assert "SaveVideo" in types or "SaveImage" in types
    assert "LoadVideo" in types
    assert "GetVideoComponents" in types or "DanceReenactReenactStreamed" in types
    ids = {n["id"] for n in ui["nodes"]}
    for link in ui["links"]:  # every link joins two nodes of the graph
        assert link[1] in ids and link[3] in ids
    xs = {n["id"]: n["pos"][0] for n in ui["nodes"]}
    for link in ui["links"]:  # left to right: data flows rightwards (or down one column)
        assert xs[link[1]] <= xs[link[3]], (name, link)
    boxes = [(n["pos"][0], n["pos"][1], n["size"][0], n["size"][1]) for n in ui["nodes"]]
    for i, a in enumerate(boxes):  # nothing overlaps
        for b in boxes[i + 1:]:
            assert (a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1]
                    or b[1] + b[3] <= a[1]), (name, a, b)
    api = ui_to_api(ui, node_defs_from_classes(MAPPINGS))
    for spec in api.values():  # every widget has a value
        assert all(v is not None for v in spec["inputs"].values()), spec


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.json")))
def test_missing_detections_never_stop_a_shipped_workflow(name):
    # A driver frame without a person is interpolated (OpenPose/DensePose) or held (P2B); only
    # a clip with nobody at all stops. The target video's poses may be empty (Best Appearance
    # Frame must not pick an invented pose).
    api = load_api(name)
    for spec in api.values():
        inputs = spec["inputs"]
        if spec["class_type"] in ("DanceReenactOpenPose", "DanceReenactDensePose"):
            assert inputs["on_no_person"] in ("interpolate", "empty"), (name, spec)
            if inputs["on_no_person"] == "empty":
                assert name == "target_video.json", spec
        if spec["class_type"] == "DanceReenactP2B":
            assert inputs["missing_person"] == "hold", (name, spec)
    drivers = [s for s in api.values() if s["class_type"] == "DanceReenactOpenPose"
               and s["inputs"]["on_no_person"] == "interpolate"]
    streamed = [s for s in api.values() if s["class_type"] == "DanceReenactReenactStreamed"]
    assert drivers or streamed, name  # the streamed node always interpolates


def test_the_learned_workflow_uses_the_learned_backends():
    api = load_api("full_method.json")
    by_type: dict[str, list] = {}
    for spec in api.values():
        by_type.setdefault(spec["class_type"], []).append(spec["inputs"])
    assert {i["backend"] for i in by_type["DanceReenactOpenPose"]} == {"dwpose"}
    assert by_type["DanceReenactHumanParse"][0]["backend"] == "schp_lip"
    assert by_type["DanceReenactDensePose"][0]["backend"] == "densepose_r50"
    assert by_type["DanceReenactP2BLoader"][0]["local_file"] == "p2b.safetensors"
    assert by_type["DanceReenactB2FLoader"][0]["local_file"] == "b2f.safetensors"
    assert by_type["DanceReenactLoadFaceRefine"][0]["backend"] == "local"
    assert by_type["DanceReenactAppearanceEncoder"][0]["backend"] == "pretrained"
    assert by_type["DanceReenactInpaint"][0]["backend"] == "lama"
    for key in ("DanceReenactSmoothPose", "DanceReenactStabilizeMask"):
        assert key in by_type


# --------------------------------------------------------------------------------------------
# Running them
# --------------------------------------------------------------------------------------------

def test_offline_workflow_end_to_end(driver, target):
    api, out = run("offline_weightless.json", {"target.png": target},
                   {"driver.mp4": FakeVideo(driver.frames, 12.0)})
    video = saved_video()
    assert video.frames.shape == (4, 192, 128, 3) and video.fps == 12.0
    b2f = node_of(api, "DanceReenactB2F")
    assert_follows_driver(out[b2f][1], driver)
    # the saved frames show the person where B2F's mask is, and the target's inpainted
    # background (fitted to the driver's frame) elsewhere
    blend = node_of(api, "DanceReenactMaskBlend")
    comp, _, _ = out[blend]  # its alpha output is switched off: nothing reads it
    src, slot = api[blend]["inputs"]["mask"]
    alpha = out[src][slot]  # the mask the blend used
    assert float((alpha > 0.99).float().mean()) > 0.05  # the stabilised mask keeps the person
    assert torch.allclose(comp[alpha > 0.99], out[b2f][0][alpha > 0.99], atol=0.02)
    assert torch.isfinite(video.frames).all() and 0 <= float(video.frames.min())
    assert float(video.frames.max()) <= 1.0
    smooth = node_of(api, "DanceReenactSmoothPose")
    assert api[smooth]["inputs"]["fps"] == [node_of(api, "GetVideoComponents"), 2]


def test_background_swap_reruns_only_the_blend_and_what_follows(driver, target):
    videos = {"driver.mp4": FakeVideo(driver.frames, 24.0),
              "background.mp4": FakeVideo(torch.rand(3, 60, 90, 3), 24.0)}
    bg_a = torch.zeros(1, 100, 150, 3)
    bg_b = torch.ones(1, 100, 150, 3)
    calls: list[str] = []


    def counting(key: str, cls: type) -> type:
        func = getattr(cls, cls.FUNCTION)

        def wrap(self, *a, **kw):
            calls.append(key)
            return func(self, *a, **kw)
        return type(cls.__name__, (cls,), {cls.FUNCTION: wrap})

    counted = {key: counting(key, cls) for key, cls in MAPPINGS.items()}
    api = load_api("background_swap.json")
    bg_node = node_of(api, "LoadImage", 1)
    assert api[bg_node]["inputs"]["image"] == "background.png"
    cache: dict = {}
    Files.videos = videos
    Files.images = {"target.png": target, "background.png": bg_a, "other.png": bg_b}
    Files.saved_images = []
    first = run_workflow(api, counted, cache=cache)
    (prefix, rgba), = Files.saved_images  # the foreground with alpha, for other software
    assert prefix.startswith("dance_reenact/foreground_rgba") and rgba.shape == (4, 192, 128, 4)
    n_first = len(calls)
    assert n_first == len(api)
    calls.clear()
    api2 = json.loads(json.dumps(api))
    api2[bg_node]["inputs"]["image"] = "other.png"  # the user picks another background
    second = run_workflow(api2, counted, cache=cache)
    assert sorted(calls) == sorted(["LoadImage", "DanceReenactMaskBlend", "SaveImage",
                                    "DanceReenactFaceRefine", "PreviewAny", "CreateVideo",
                                    "SaveVideo"])
    # ComfyUI would re-run a node that declares itself changed or not idempotent: none does
    for cls in NODE_CLASS_MAPPINGS.values():
        assert not hasattr(cls, "IS_CHANGED") and not getattr(cls, "NOT_IDEMPOTENT", False)
    blend = node_of(api, "DanceReenactMaskBlend")
    b2f = node_of(api, "DanceReenactB2F")
    assert torch.allclose(rgba[..., 3], first[blend][2])
    m = first[b2f][1]
    away = m == 0
    assert torch.equal(second[b2f][0], first[b2f][0])  # cached upstream, same object
    assert float(first[blend][0][away].max()) == 0.0 and float(second[blend][0][away].min()) \
        == 1.0
    # A video background (the note's rewiring): looped to the driver's length.
    api3 = json.loads(json.dumps(api))
    bg_frames = node_of(api, "GetVideoComponents", 1)
    api3[blend]["inputs"]["background"] = [bg_frames, 0]
    calls.clear()
    third = run_workflow(api3, counted, cache=cache)
    assert "DanceReenactB2F" not in calls and third[blend][0].shape == (4, 192, 128, 3)
    assert_follows_driver(third[b2f][1], driver)


def test_driver_background_keeps_the_drivers_scene(driver, target):
    api, out = run("driver_background.json", {"target.png": target},
                   {"driver.mp4": FakeVideo(driver.frames, 24.0)})
    video = saved_video()
    assert video.frames.shape == (4, 192, 128, 3)
    plate = out[node_of(api, "DanceReenactInpaint")][0]
    assert plate.shape == (4, 192, 128, 3)
    # where the dancer stands in frame 0 but is well away in the last frame, the median plate
    # recovers the clean scene (the dancer is removed, not smeared)
    import cv2

    bg = torch.from_numpy(driver.background).float() / 255
    far_later = cv2.dilate(driver.masks[-1].astype(np.uint8), np.ones((21, 21), np.uint8)) == 0
    region = torch.from_numpy(driver.masks[0] & far_later)
    assert int(region.sum()) > 200
    err = (plate[0] - bg).abs().max(-1).values
    assert float(err[region].mean()) < 0.05, float(err[region].mean())
    before = (driver.frames[0] - bg).abs().max(-1).values
    assert float(before[region].mean()) > 0.15  # the dancer was really there
    b2f = node_of(api, "DanceReenactB2F")
    assert_follows_driver(out[b2f][1], driver)
    m = out[b2f][1]
    away = torch.from_numpy(~driver.masks.any(0))[None] & (m == 0)
    assert float((video.frames - bg)[away.expand_as(m)].abs().max()) < 0.05


def test_preprocessing_saves_conditioning(driver):
    api, out = run("preprocessing.json", {}, {"driver.mp4": FakeVideo(driver.frames, 24.0)})
    prefixes = sorted(p for p, _ in Files.saved_videos)
    assert prefixes == sorted(f"dance_reenact/conditioning/{n}"
                              for n in ("pose", "densepose", "parsing"))
    for _, v in Files.saved_videos:
        assert v.frames.shape == (4, 192, 128, 3) and float(v.frames.max()) > 0
    masks = dict(Files.saved_images)
    person = masks["dance_reenact/conditioning/person_mask"]
    assert person.shape == (4, 192, 128, 3)
    iou = [((person[i, ..., 0] > 0.5).numpy() & driver.masks[i]).sum()
           / ((person[i, ..., 0] > 0.5).numpy() | driver.masks[i]).sum() for i in range(4)]
    assert min(iou) > 0.6, iou
    face = masks["dance_reenact/conditioning/face_mask"][..., 0] > 0.5
    assert 0 < int(face.sum()) < int((person[..., 0] > 0.5).sum()) / 3


def test_target_video_picks_the_best_frame(driver, target):
    # a target "video": a tiny black frame with nobody, then the astronaut twice
    tv = torch.cat([torch.zeros(1, 256, 256, 3), target, target.flip(2)])
    api, out = run("target_video.json", {}, {"driver.mp4": FakeVideo(driver.frames, 24.0),
                                             "target.mp4": FakeVideo(tv, 24.0)})
    best = node_of(api, "DanceReenactBestAppearanceFrame")
    assert out[best][1] in (1, 2)
    assert saved_video().frames.shape == (4, 192, 128, 3)
    assert_follows_driver(out[node_of(api, "DanceReenactB2F")][1], driver)


def test_retarget_in_photo_dances_on_the_targets_canvas(driver, target):
    api, out = run("retarget_in_photo.json", {"target.png": target},
                   {"driver.mp4": FakeVideo(driver.frames, 24.0)})
    video = saved_video()
    assert video.frames.shape == (4, 256, 256, 3)  # the target photo's size
    m = out[node_of(api, "DanceReenactB2F")][1]
    xs = [(mm.numpy() * np.arange(256)).sum() / mm.numpy().sum() for mm in m]
    assert np.all(np.diff(xs) > 0), xs  # moves right with the driver


@pytest.mark.slow
def test_large_target_and_a_driver_of_another_aspect(driver, astronaut):
    """Issue 7: a 1200x900 target photo and a 128x192 (portrait) driver: no crash, output at
    the driver's size, the person not distorted (the face keeps its aspect)."""
    import cv2

    big = cv2.resize(astronaut, (900, 900), interpolation=cv2.INTER_CUBIC)
    photo = np.concatenate([np.repeat(big[:, :1], 150, 1), big, np.repeat(big[:, -1:], 150, 1)],
                           1)  # 1200 wide, 900 tall: landscape
    api, out = run("offline_weightless.json", {"target.png": rgb_uint8_to_image(photo)},
                   {"driver.mp4": FakeVideo(driver.frames, 24.0)})
    assert saved_video().frames.shape == (4, 192, 128, 3)
    parse = out[node_of(api, "DanceReenactHumanParse")][0].labels[0].numpy()
    p2b = out[node_of(api, "DanceReenactP2B")][0].labels.numpy()

    def face_aspect(labels):
        ys, xs = np.nonzero(labels == LABEL["face"])
        return (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)

    a0 = face_aspect(parse)
    for frame in p2b:
        assert abs(face_aspect(frame) / a0 - 1) < 0.2, (face_aspect(frame), a0)
    assert_follows_driver(out[node_of(api, "DanceReenactB2F")][1], driver)


@pytest.mark.slow
def test_full_hd_driver_and_a_12_megapixel_target(astronaut):
    """Issue 8: a 1920x1080 driver and a 3000x4000 target photo through the whole offline
    workflow: the output is 1920x1080 with the person at the driver's position."""
    import time

    import cv2

    drv = make_driver(h=1080, w=1920, n=2, x0=0.42, x1=0.55)
    side = cv2.resize(astronaut, (3000, 3000), interpolation=cv2.INTER_LINEAR)
    photo = np.concatenate([side, np.repeat(side[-1:], 1000, 0)], 0)  # 3000 wide, 4000 tall
    t0 = time.perf_counter()
    api, out = run("offline_weightless.json", {"target.png": rgb_uint8_to_image(photo)},
                   {"driver.mp4": FakeVideo(drv.frames, 24.0)})
    elapsed = time.perf_counter() - t0
    video = saved_video()
    assert video.frames.shape == (2, 1080, 1920, 3)
    m = out[node_of(api, "DanceReenactB2F")][1]
    assert_follows_driver(m, drv, tol=0.05)
    print(f"1920x1080 driver, 3000x4000 target, 2 frames: {elapsed:.1f} s")


def test_warp_backends_reduce_a_huge_target_without_changing_the_result():
    """P2B and B2F warp a target 8x larger than the driver frames (2048x1280 vs 240x200) as
    they warp the same target at 256x160: the reduction before the part assignment loses
    nothing visible, and the big target costs about as much as the small one."""
    import time

    import cv2

    from dance_reenact.models.core.schema import people_to_frame
    from dance_reenact.models.geometry.warp import limit_source
    from dance_reenact.nodes.b2f import B2F, AppearanceEncoderNode, B2FLoader, PartCropper
    from dance_reenact.nodes.p2b import P2B, P2BLoader
    from dance_reenact.nodes.sockets import Parsing
    from dance_reenact.training.synthetic import random_pair

    rng = np.random.default_rng(11)
    body, a, _ = random_pair(rng, 256, 160)
    drivers = [random_pair(rng, 240, 200, body=body)[2] for _ in range(2)]
    dpose = [people_to_frame([d.person], 200, 240) for d in drivers]

    def run_target(image, labels, person, w, h):
        t0 = time.perf_counter()
        parsing = Parsing(torch.from_numpy(labels)[None])
        tpose = [people_to_frame([person], w, h)]
        p2b, _ = P2B().run(P2BLoader().load("warp")[0], parsing, target_pose=tpose,
                           driver_pose=dpose)
        parts = PartCropper().crop(rgb_uint8_to_image(image), parsing, tpose)[0]
        app = AppearanceEncoderNode().encode(parts, "weightless")[0]
        z, m, _ = B2F().generate(B2FLoader().load("warp")[0], p2b, app, dpose)
        return p2b.labels.numpy(), m.numpy(), time.perf_counter() - t0

    small = run_target(a.image, a.labels, a.person, 160, 256)
    big_img = cv2.resize(a.image, (1280, 2048), interpolation=cv2.INTER_NEAREST)
    big_lab = cv2.resize(a.labels, (1280, 2048), interpolation=cv2.INTER_NEAREST)
    big = run_target(big_img, big_lab, a.person.scaled(8, 8), 1280, 2048)
    for k in range(2):
        s, b = small[0][k] > 0, big[0][k] > 0
        assert (s & b).sum() / (s | b).sum() > 0.9
        assert (small[0][k] == big[0][k])[s | b].mean() > 0.85
        ms, mb = small[1][k] > 0.5, big[1][k] > 0.5
        assert (ms & mb).sum() / (ms | mb).sum() > 0.9
    print(f"warp P2B+B2F, 2 frames: target 256x160 {small[2]:.2f} s, 2048x1280 {big[2]:.2f} s")
    assert big[2] < 3 * small[2] + 1.0, (big[2], small[2])
    # the helper itself: reduced to the frame's larger side (floor 512), keypoints alike
    lab, person, img = limit_source(big_lab, a.person.scaled(8, 8), (240, 200), big_img)
    assert lab.shape == (512, 320) and img.shape == (512, 320, 3)
    assert np.allclose(person.body[:, :2], a.person.scaled(2, 2).body[:, :2], atol=1e-3)
    same = limit_source(a.labels, a.person, (240, 200))
    assert same[0] is a.labels and same[1] is a.person


# --------------------------------------------------------------------------------------------
# The learned-backend workflow, with generated weights for every file it reads
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def learned_files(astronaut, tmp_path_factory):
    """Every file full_method.json needs, generated once: exact architectures/contracts with
    random values (SCHP LIP at full size; DWPose ONNX and DensePose TorchScript stand-ins whose
    person box follows the non-black pixels; facenet + sparse vgg19; a LaMa stand-in; tiny
    P2B / B2F / FaceRefine checkpoints under the file names the workflow selects)."""
    from test_inpaint import _scripted_lama
    from test_parsing_schp import _checkpoint_bytes
    from weight_fakes import (
        box_densepose_torchscript,
        dwpose_following_files,
        facenet_state_bytes,
        write_sparse_vgg19,
    )

    from dance_reenact.models.io.loading import save_model
    from dance_reenact.models.networks.appearance import EMBED_DIM
    from dance_reenact.models.networks.b2f import B2FGenerator
    from dance_reenact.models.networks.face_refine import FaceRefineNet
    from dance_reenact.models.networks.p2b import P2BGenerator
    from dance_reenact.models.perception import schp

    d = tmp_path_factory.mktemp("learned")
    det, pose = dwpose_following_files()
    net = schp.random_schp([astronaut, astronaut[::-1].copy()], seed=0)
    files = {"dwpose_detector": det, "dwpose_wholebody": pose,
             "densepose_r50": box_densepose_torchscript(), "big_lama": _scripted_lama(),
             "facenet_vggface2": facenet_state_bytes(),
             "schp_lip": _checkpoint_bytes({k: v.detach().clone()
                                            for k, v in net.state_dict().items()})}
    paths = {}
    for name, data in files.items():
        paths[name] = d / name
        paths[name].write_bytes(data)
    paths["vgg19"] = d / "vgg19"
    write_sparse_vgg19(paths["vgg19"], digest=False)
    torch.manual_seed(0)
    p2b = P2BGenerator(ngf=4, n_down=2, n_res=1, work_height=64, work_width=40)
    with torch.no_grad():  # a random P2B rarely says "background": never, here
        last = [m for m in p2b.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        last.bias[0] = -20.0
    save_model(p2b, d / "p2b.safetensors")
    save_model(B2FGenerator(embed_dim=EMBED_DIM, fc_channels=32, ngf=8, n_up=3, spade_hidden=8),
               d / "b2f.safetensors")
    save_model(FaceRefineNet(crop_size=64, ngf=8, n_down=2, max_channels=16, embed_dim=8),
               d / "face_refine.safetensors")
    return d, paths


def _install_learned(learned_files, weights_dir, monkeypatch) -> None:
    import dataclasses
    import hashlib
    import os

    from dance_reenact.models.io import weights

    d, paths = learned_files
    for name, path in paths.items():
        spec = weights.REGISTRY[name]
        os.link(path, weights_dir / spec.disk_name)
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 24):
                h.update(block)
        monkeypatch.setitem(weights.REGISTRY, name, dataclasses.replace(
            spec, sha256=h.hexdigest(), size=path.stat().st_size))
    for local in ("p2b.safetensors", "b2f.safetensors", "face_refine.safetensors"):
        os.link(d / local, weights_dir / local)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # everything is local: nothing may download
    model_cache().clear()  # nothing loaded by an earlier test may stand in for these files


@pytest.mark.slow
def test_full_method_with_the_learned_backends(learned_files, weights_dir, monkeypatch,
                                               astronaut):
    """full_method.json end to end with every learned backend loading its (generated) file
    through the registry and the loaders. The networks are random, so only placement is
    checked: the frames are the driver's size and the person is drawn where DWPose found the
    driver in each frame."""
    import time

    from dance_reenact.models.perception import pose as pose_mod

    _install_learned(learned_files, weights_dir, monkeypatch)
    drv = make_driver(h=192, w=256, n=3, x0=0.35, x1=0.65)  # wide: the arms stay inside
    black = drv.frames * torch.from_numpy(drv.masks)[..., None]  # on black: DWPose's box
    drv = replace(drv, frames=black)
    # the photo on a black canvas: the DWPose stand-in's box is the astronaut, and the random
    # SCHP (parsing the person's box, as the workflow asks) labels only around her
    canvas = np.zeros((512, 768, 3), np.uint8)
    canvas[:, 128:640] = astronaut
    target = rgb_uint8_to_image(canvas)
    t0 = time.perf_counter()
    try:
        api, out = run("full_method.json", {"target.png": target},
                       {"driver.mp4": FakeVideo(black, 24.0)})
    finally:
        pose_mod.clear_cache()
    elapsed = time.perf_counter() - t0
    video = saved_video()
    assert video.frames.shape == (3, 192, 256, 3) and torch.isfinite(video.frames).all()
    handles = {api[n]["class_type"]: out[n][0] for n in api
               if api[n]["class_type"].endswith(("Loader", "LoadFaceRefine"))}
    assert all(h.backend == "network" for h in handles.values()), handles
    app = out[node_of(api, "DanceReenactAppearanceEncoder")][0]
    assert app.embedding is not None and app.embedding.shape[-1] == 2560
    # DWPose's driver necks follow the dancer, and so does the drawn person
    poses = out[node_of(api, "DanceReenactOpenPose", 1)][0]
    necks = np.array([np.array(f["people"][0]["pose_keypoints_2d"]).reshape(-1, 3)[1, 0]
                      for f in poses])
    assert np.all(np.diff(necks) > 0.5 * np.diff(drv.neck_x)), (necks, drv.neck_x)
    p2b = out[node_of(api, "DanceReenactP2B")][0].labels
    assert_follows_driver((p2b > 0).float(), replace(drv, neck_x=necks), tol=0.1)
    m = out[node_of(api, "DanceReenactB2F")][1]
    assert float(m.sum()) > 0
    print(f"full_method.json, learned backends, 3 frames 256x192: {elapsed:.1f} s")


# --------------------------------------------------------------------------------------------
# Failing fast: the whole graph's problems at once, within seconds of queueing
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("offline", [True, False])
def test_missing_weights_are_listed_all_at_once_within_seconds(driver, target, monkeypatch,
                                                               offline):
    """full_method.json with no weight file on disk, offline or with the Hub unreachable (the
    conftest's closed port): the first node to run answers with ONE error that lists every
    file of every loader, each with its folder and a direct download URL."""
    import time

    from dance_reenact.models.io import weights
    from dance_reenact.nodes import preflight
    from dance_reenact.nodes.runtime import NodeInputError

    weights._probes.clear()
    preflight._checked.clear()
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(NodeInputError) as err:
        run("full_method.json", {"target.png": target},
            {"driver.mp4": FakeVideo(driver.frames, 24.0)})
    assert time.perf_counter() - t0 < 5.0
    msg = str(err.value)
    folder = str(weights.search_roots()[0])
    for name in ("dwpose_detector", "dwpose_wholebody", "schp_lip", "densepose_r50",
                 "facenet_vggface2", "vgg19", "big_lama"):
        spec = weights.REGISTRY[name]
        assert spec.disk_name in msg and spec.url in msg, name
        assert "/resolve/" in spec.url and "/blob/" not in msg
    for local in ("p2b.safetensors", "b2f.safetensors", "face_refine.safetensors"):
        assert local in msg
    assert msg.count(f"{folder}/") == 10  # each file once, with where to put it
    assert ("offline" if offline else "did not answer") in msg
    assert err.value.input_name == "(workflow)"


def test_a_target_without_a_person_answers_within_seconds(driver):
    import time

    from skimage import data

    from dance_reenact.nodes.runtime import NodeInputError

    t0 = time.perf_counter()
    with pytest.raises(NodeInputError, match=r"OpenPose.*no person"):
        run("offline_weightless.json", {"target.png": rgb_uint8_to_image(data.coffee())},
            {"driver.mp4": FakeVideo(driver.frames, 24.0)})
    assert time.perf_counter() - t0 < 5.0


def test_loaders_share_one_vocabulary_and_empty_choice(weights_dir):
    from dance_reenact.nodes.runtime import NO_FILE

    loaders = ("DanceReenactP2BLoader", "DanceReenactB2FLoader", "DanceReenactLoadFaceRefine")
    for key in loaders:
        cls = NODE_CLASS_MAPPINGS[key]
        spec = cls.INPUT_TYPES()
        assert spec["required"]["backend"][0] == ["warp", "hub", "local"], key
        assert spec["required"]["backend"][1]["default"] == "warp", key
        choices, opts = spec["optional"]["local_file"]
        assert choices[0] == NO_FILE == opts["default"] and "put .safetensors files in" in NO_FILE
        # older saved values still pass ComfyUI's validation and load
        for legacy in ("weightless", "local_file"):
            assert cls.VALIDATE_INPUTS(backend=legacy) is True
        assert cls.VALIDATE_INPUTS(backend="nope") is not True
    (handle,) = NODE_CLASS_MAPPINGS["DanceReenactLoadFaceRefine"]().load("weightless")
    assert handle.backend == "weightless"
    # the lists create the models folder, so "put files in ..." points at a real folder
    import shutil

    shutil.rmtree(weights_dir)
    NODE_CLASS_MAPPINGS["DanceReenactP2BLoader"].INPUT_TYPES()
    assert weights_dir.is_dir()


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.json")))
def test_every_report_is_shown_in_a_preview_any_node(name):
    """Each STRING output that says what a node skipped or degraded (report / scores /
    missing) is wired to a core Preview Any node, so the artist sees it after a run."""
    api = load_api(name)
    shown = {tuple(s["inputs"]["source"]) for s in api.values()
             if s["class_type"] == "PreviewAny"}
    for nid, spec in api.items():
        cls = MAPPINGS[spec["class_type"]]
        for slot, (kind, out) in enumerate(zip(cls.RETURN_TYPES,
                                               getattr(cls, "RETURN_NAMES", ()))):
            if kind == "STRING" and out in ("report", "scores", "missing"):
                assert (nid, slot) in shown, (name, spec["class_type"], out)


def test_offline_run_shows_the_face_refine_report(driver, target):
    api, out = run("offline_weightless.json", {"target.png": target},
                   {"driver.mp4": FakeVideo(driver.frames, 12.0)})
    face = out[node_of(api, "DanceReenactFaceRefine")]
    assert face[2] in Files.previews and face[2].startswith("FaceRefine:")


def _downstream(api: dict, roots: set[str]) -> set[str]:
    """Every node that depends (through links) on one of ``roots``, roots included."""
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for nid, spec in api.items():
            if nid not in found and any(isinstance(v, list) and len(v) == 2 and v[0] in found
                                        for v in spec["inputs"].values()):
                found.add(nid)
                changed = True
    return found


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.json")))
def test_comfyui_checks_the_target_photo_before_the_driver_video(name):
    """In ComfyUI's own execution order (tests/executor.py: comfy_order), whatever order its
    set of output nodes comes in, the target photo's OpenPose (a person? how big?) runs before
    the driver video is decoded or any stage that reads it."""
    import random

    from executor import comfy_order

    api = load_api(name)
    targets = [nid for nid, s in api.items() if s["class_type"] == "DanceReenactOpenPose"
               and s["inputs"]["image"][0] in {n for n, t in api.items()
                                               if t["class_type"] == "LoadImage"}]
    if not targets:
        pytest.skip(f"{name} has no target photo")
    videos = {nid for nid, s in api.items() if s["class_type"] == "GetVideoComponents"}
    driver_nodes = _downstream(api, videos)
    outputs = [n for n, s in api.items() if getattr(MAPPINGS[s["class_type"]], "OUTPUT_NODE",
                                                     False) is True]
    rng = random.Random(0)
    for _ in range(20):
        rng.shuffle(outputs)
        order = comfy_order(api, MAPPINGS, outputs)
        first_driver = min(order.index(n) for n in driver_nodes if n in order)
        assert order.index(targets[0]) < first_driver, (name, outputs)


def test_a_target_without_a_person_stops_before_any_driver_video_node(driver):
    from skimage import data

    from dance_reenact.nodes.runtime import NodeInputError

    api = load_api("offline_weightless.json")
    Files.images = {"target.png": rgb_uint8_to_image(data.coffee())}
    Files.videos = {"driver.mp4": FakeVideo(driver.frames, 24.0)}
    Files.saved_videos, Files.saved_images, Files.previews = [], [], []
    trace: list[str] = []
    with pytest.raises(NodeInputError, match=r"OpenPose.*no person"):
        run_workflow(api, MAPPINGS, order="comfy", trace=trace)
    videos = {nid for nid, s in api.items() if s["class_type"] == "GetVideoComponents"}
    ran = [api[n]["class_type"] for n in trace[:-1]]
    assert api[trace[-1]]["class_type"] == "DanceReenactOpenPose"
    assert not set(trace) & _downstream(api, videos), ran
