"""FaceRefine: landmarks, alignment, the weightless paste, the network path and the nodes."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import torch

from dance_reenact.models.compositing import face as F
from dance_reenact.models.core.schema import LABEL
from dance_reenact.models.io import weights
from dance_reenact.models.io.loading import save_model
from dance_reenact.models.networks.face_refine import (
    FaceRefineNet,
    refine_face_network,
    target_embedding,
)
from dance_reenact.models.perception.mediapipe_holistic import FACE68_FROM_MESH
from dance_reenact.nodes.face import FaceRefine, LoadFaceRefine
from dance_reenact.nodes.runtime import NodeInputError
from dance_reenact.nodes.sockets import Parsing, rgb_uint8_to_image


def psnr(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
    err = ((a.astype(np.float64) - b.astype(np.float64)) ** 2)[m].mean()
    return float(10 * np.log10(255.0 ** 2 / max(err, 1e-12)))


@pytest.fixture(scope="module")
def scene():
    """The astronaut, and a shifted/scaled/rotated copy whose face is JPEG-mangled (a bad
    generated face); the clean copy is the ground truth."""
    from skimage import data

    img = data.astronaut()
    with F.MediaPipeFaceLandmarks() as det:
        lm_t = det(img)
    mat = cv2.getRotationMatrix2D((256, 256), 12, 0.8)
    mat[:, 2] += (30, 20)
    clean = cv2.warpAffine(img, mat, (512, 512), borderMode=cv2.BORDER_REFLECT101)
    lm_gt = F.transform_points(lm_t, mat)
    face = F.face_hull_mask(lm_gt, 512, 512).astype(bool)
    region = cv2.dilate(face.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    bgr = np.ascontiguousarray(clean[..., ::-1])
    jpeg = cv2.imdecode(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 4])[1], 1)[..., ::-1]
    bad = clean.copy()
    bad[region] = jpeg[region]
    return dict(img=img, lm_t=lm_t, clean=clean, bad=bad, face=face, lm_gt=lm_gt)


def test_mesh_to_68_map_is_a_valid_ibug_layout(scene):
    idx = np.array(FACE68_FROM_MESH)
    assert idx.shape == (68, 2) and idx.max() < 468
    lm = scene["lm_t"]
    # iBUG geometry on a frontal face: jaw goes image-left to image-right, chin lowest,
    # image-left eye (36-41) left of the other, brows above eyes, mouth below nose
    assert lm[0, 0] < lm[8, 0] < lm[16, 0] and lm[8, 1] == lm[0:17, 1].max()
    assert lm[36:42, 0].mean() < lm[42:48, 0].mean()
    assert lm[17:27, 1].mean() < lm[36:48, 1].mean() < lm[30, 1] < lm[48:68, 1].mean()


def test_alignment_puts_the_face_on_the_template(scene):
    crop, mat = F.align_face(scene["img"], scene["lm_t"])
    assert crop.shape == (256, 256, 3)
    five = F.transform_points(F.five_points(scene["lm_t"]), mat)
    # a least-squares fit: her wide smile keeps the mouth corners ~10 px off the template
    err = np.linalg.norm(five - F.CANONICAL_5, axis=1)
    assert err[:3].max() < 9.0 and err.max() < 15.0
    # the same face rotated/scaled/shifted aligns to (almost) the same crop
    crop2, _ = F.align_face(scene["clean"], scene["lm_gt"])
    assert psnr(crop, crop2, np.ones((256, 256), bool)) > 25


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (20, 2))
    mat = cv2.getRotationMatrix2D((50, 50), 33, 1.7)
    got = F.similarity_transform(src, F.transform_points(src, mat))
    np.testing.assert_allclose(got, mat, atol=1e-9)


def test_weightless_paste_improves_the_face_and_leaves_the_rest(scene):
    with F.MediaPipeFaceLandmarks() as det:
        lm_f = det(scene["bad"])
    assert lm_f is not None
    target = F.FaceTarget.from_image(scene["img"], scene["lm_t"])
    face, clean, bad = scene["face"], scene["clean"], scene["bad"]
    before = psnr(bad, clean, face)
    for seamless in (False, True):
        out = F.refine_face_weightless(bad, lm_f, target, seamless=seamless)
        after = psnr(out, clean, face)
        assert after > before + 2.0, (seamless, before, after)
        changed = (out != bad).any(-1)
        grown = cv2.dilate(F.face_hull_mask(lm_f, 512, 512), np.ones((3, 3), np.uint8))
        assert changed.any() and not (changed & (grown == 0)).any()


def _node_run(model, frames, target, parsing=None):
    return FaceRefine().refine(model, frames, target, parsing)[:2]


def test_face_refine_node_weightless_and_no_face_passthrough(scene):
    (model,) = LoadFaceRefine().load("weightless", "mediapipe")
    rng = np.random.default_rng(1)
    no_face = cv2.GaussianBlur(rng.integers(0, 255, (512, 512, 3), dtype=np.uint8), (0, 0), 8)
    frames = rgb_uint8_to_image([scene["bad"], no_face])
    frames[1] += 1e-4  # values that are not multiples of 1/255 must survive bit-exactly
    out, missing = _node_run(model, frames, rgb_uint8_to_image(scene["img"]))
    assert out.shape == (2, 512, 512, 3) and missing == 1
    assert torch.equal(out[1], frames[1])
    got = (out[0].numpy() * 255 + 0.5).astype(np.uint8)
    assert psnr(got, scene["clean"], scene["face"]) > psnr(scene["bad"], scene["clean"],
                                                           scene["face"]) + 2
    outside = ~cv2.dilate(scene["face"].astype(np.uint8), np.ones((31, 31), np.uint8)).astype(bool)
    assert torch.equal(out[0][torch.from_numpy(outside)], frames[0][torch.from_numpy(outside)])


def test_face_refine_node_parsing_limits_the_blend(scene):
    (model,) = LoadFaceRefine().load("weightless", "mediapipe")
    labels = np.zeros((1, 512, 512), np.uint8)
    labels[0, :, :256] = 13  # "face" only on the image-left half
    frames = rgb_uint8_to_image(scene["bad"])
    out, missing = _node_run(model, frames, rgb_uint8_to_image(scene["img"]),
                             Parsing(torch.from_numpy(labels)))
    assert missing == 0
    diff = (out[0] != frames[0]).any(-1).numpy()
    assert diff[:, :250].any() and not diff[:, 275:].any()


def test_face_refine_bad_inputs(scene):
    node = FaceRefine()
    (model,) = LoadFaceRefine().load("weightless", "mediapipe")
    tiny = torch.rand(1, 16, 16, 3)
    # a 16x16 frame has no detectable face: passes through, counted
    out, missing, report = node.refine(model, tiny, rgb_uint8_to_image(scene["img"]))
    assert missing == 1 and torch.equal(out, tiny) and "frame(s) 0" in report
    # grayscale / RGBA frames are accepted and give RGB
    gray = rgb_uint8_to_image(scene["bad"]).mean(-1, keepdim=True)
    out, missing, _ = node.refine(model, gray, rgb_uint8_to_image(scene["img"]))
    assert out.shape == (1, 512, 512, 3) and missing == 0
    rgba = torch.cat([rgb_uint8_to_image(scene["bad"]), torch.ones(1, 512, 512, 1)], -1)
    out, missing, _ = node.refine(model, rgba, rgb_uint8_to_image(scene["img"]))
    assert out.shape == (1, 512, 512, 3) and missing == 0
    # a target photo without a face never stops the graph: all frames pass, the report says
    out, missing, report = node.refine(model, rgb_uint8_to_image(scene["bad"]), tiny)
    assert missing == 1 and torch.equal(out, rgb_uint8_to_image(scene["bad"]))
    assert "skipped" in report and "16x16" in report
    with pytest.raises(NodeInputError, match="'parsing'.*same size"):
        node.refine(model, rgb_uint8_to_image(scene["bad"]), rgb_uint8_to_image(scene["img"]),
                    Parsing(torch.zeros(1, 64, 64, dtype=torch.uint8)))
    with pytest.raises(NodeInputError, match="different lengths"):
        node.refine(model, rgb_uint8_to_image([scene["bad"]] * 3),
                    rgb_uint8_to_image(scene["img"]),
                    Parsing(torch.zeros(2, 512, 512, dtype=torch.uint8)))
    with pytest.raises(NodeInputError, match="FACEREFINE_MODEL"):
        node.refine("nope", tiny, tiny)


def test_network_path_blends_only_through_its_mask(scene):
    torch.manual_seed(0)
    net = FaceRefineNet(crop_size=128, ngf=8, n_down=3, max_channels=32, embed_dim=16).eval()
    target = F.FaceTarget.from_image(scene["img"], scene["lm_t"])
    emb = target_embedding(net, target)
    assert emb.shape == (1, 16)
    with torch.no_grad():  # a mask that is 0 everywhere: nothing may change
        net.to_mask.weight.zero_()
        net.to_mask.bias.fill_(-30.0)
    out = refine_face_network(net, scene["bad"], scene["lm_gt"], emb)
    assert np.array_equal(out, scene["bad"])
    with torch.no_grad():  # mask 1 and an rgb head forced to +1: the face turns white
        net.to_mask.bias.fill_(30.0)
        net.to_rgb.bias.fill_(30.0)
    out = refine_face_network(net, scene["bad"], scene["lm_gt"], emb)
    core = cv2.erode(scene["face"].astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    assert out[core].min() >= 250
    crop_box = cv2.warpAffine(np.ones((128, 128), np.uint8),
                              cv2.invertAffineTransform(F.alignment_matrix(scene["lm_gt"], 128)),
                              (512, 512))
    assert np.array_equal(out[crop_box == 0], scene["bad"][crop_box == 0])


def test_loader_local_file_hub_and_wrong_files(scene, weights_dir, hub):
    torch.manual_seed(0)
    net = FaceRefineNet(crop_size=64, ngf=8, n_down=2, max_channels=16, embed_dim=8)
    save_model(net, weights_dir / "my_face.safetensors")
    (handle,) = LoadFaceRefine().load("local_file", "mediapipe", local_file="my_face.safetensors")
    assert handle.backend == "network" and handle.module.config == net.config
    out, missing, _ = FaceRefine().refine(handle, rgb_uint8_to_image(scene["bad"]),
                                          rgb_uint8_to_image(scene["img"]))
    assert missing == 0 and out.shape == (1, 512, 512, 3)
    # from the (loopback) Hub, by repo id and file name
    buf = (weights_dir / "my_face.safetensors").read_bytes()
    hub.add("someone/face-refine", "face.safetensors", buf)
    (handle,) = LoadFaceRefine().load("hub", "mediapipe", repo_id="someone/face-refine",
                                      filename="face.safetensors")
    assert handle.module is not None
    # a checkpoint of another architecture, a truncated file, a missing selection
    from dance_reenact.models.io.loading import register_architecture

    @register_architecture
    class OtherNet(torch.nn.Module):
        def __init__(self, *, n: int = 2) -> None:
            super().__init__()
            self.config = {"n": n}
            self.lin = torch.nn.Linear(n, n)

    save_model(OtherNet(), weights_dir / "other.safetensors")
    with pytest.raises(NodeInputError, match="OtherNet checkpoint.*FaceRefineNet"):
        LoadFaceRefine().load("local_file", "mediapipe", local_file="other.safetensors")
    (weights_dir / "cut.safetensors").write_bytes(buf[: len(buf) // 2])
    with pytest.raises(NodeInputError, match="local_file"):
        LoadFaceRefine().load("local_file", "mediapipe", local_file="cut.safetensors")
    with pytest.raises(NodeInputError, match="no FaceRefine file is selected"):
        LoadFaceRefine().load("local_file", "mediapipe")
    with pytest.raises(NodeInputError, match="repo_id"):
        LoadFaceRefine().load("hub", "mediapipe", repo_id="someone/face-refine",
                              filename="missing.safetensors")


def _fake_fan_onnx() -> bytes:
    """An ONNX model with FAN's signature: input [1,3,256,256] -> landmarks [1,68,3] in the
    64x64 grid + heatmaps [1,68,64,64]. It returns a fixed mean face on the crop, so the
    test can check the crop <-> frame geometry."""

    class Fake(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            five = F.CANONICAL_5 / 4.0  # template points in the 64 grid
            pts = np.zeros((68, 3), np.float32)
            pts[:, :2] = five[2]
            pts[36:42, :2], pts[42:48, :2] = five[0], five[1]
            pts[48, :2], pts[54, :2] = five[3], five[4]
            pts[0:17, 0] = np.linspace(12, 52, 17)
            pts[0:17, 1] = 40 + 12 * np.sin(np.linspace(0, np.pi, 17))
            pts[17:27, :2] = np.stack([np.linspace(18, 46, 10), np.full(10, 20.0)], 1)
            pts[:, 2] = 0.9
            self.register_buffer("pts", torch.from_numpy(pts)[None])

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            hm = torch.nn.functional.avg_pool2d(x, 4)[:, :1].repeat(1, 68, 1, 1)
            return self.pts + 0 * hm.mean(), hm

    buf = io.BytesIO()
    torch.onnx.export(Fake(), torch.zeros(1, 3, 256, 256), buf, input_names=["input"],
                      output_names=["landmarks", "heatmaps"], dynamo=False)
    return buf.getvalue()


def test_fan68_backend_through_the_registry(scene, hub, weights_dir, monkeypatch):
    data = _fake_fan_onnx()
    real = weights.REGISTRY["fan68"]
    sha = hub.add(real.repo_id, real.filename, data, revision=real.revision)
    monkeypatch.setitem(weights.REGISTRY, "fan68", weights.WeightSpec(
        real.repo_id, real.filename, real.revision, sha, real.license))
    (handle,) = LoadFaceRefine().load("weightless", "fan68")
    assert handle.options.fan_path.endswith("fan2_68_landmark.onnx")
    with F.make_landmarker("fan68", fan_path=handle.options.fan_path) as det:
        lm = det(scene["img"])
        assert det(np.zeros((16, 16, 3), np.uint8)) is None
    boxes = F.haar_face_boxes(scene["img"])
    x, y, w, h = boxes[0]
    # the fixed crop points map back inside the detected face box, eyes in order
    assert lm.shape == (68, 2)
    assert x - 0.2 * w < lm[:, 0].min() and lm[:, 0].max() < x + 1.2 * w
    assert y - 0.2 * h < lm[:, 1].min() and lm[:, 1].max() < y + 1.2 * h
    assert lm[36:42, 0].mean() < lm[42:48, 0].mean()
    # the whole node runs with these landmarks
    out, missing, _ = FaceRefine().refine(handle, rgb_uint8_to_image(scene["img"]),
                                          rgb_uint8_to_image(scene["img"]))
    assert missing == 0 and out.shape == (1, 512, 512, 3)


def test_fan68_missing_offline_is_a_clear_node_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NodeInputError, match=r"Load FaceRefine.*landmarks.*fan2_68_landmark"):
        LoadFaceRefine().load("weightless", "fan68")


def _small_scene(img: np.ndarray, face_px: float, size: int = 350):
    """The astronaut shrunk so her face is ``face_px`` wide in a ``size`` frame over a scene
    (as a full-body person in a driver-sized frame), clean and with a mangled face. Returns
    (clean, bad, face mask)."""
    from skimage import data

    with F.MediaPipeFaceLandmarks() as det:
        lm = det(img)
    s = face_px / F.face_size(lm)
    mat = np.array([[s, 0, 0.3 * size], [0, s, 0.1 * size]])
    blurred = cv2.GaussianBlur(img, (0, 0), 0.5 / s)
    clean = cv2.warpAffine(blurred, mat, (size, size), dst=cv2.resize(data.rocket(), (size, size)),
                           flags=cv2.INTER_AREA, borderMode=cv2.BORDER_TRANSPARENT)
    lm_s = F.transform_points(lm, mat)
    face = F.face_hull_mask(lm_s, size, size).astype(bool)
    # the bad face: a flat blur of the face with its colours shifted (a poor render)
    bad = clean.copy()
    smear = cv2.GaussianBlur(clean, (0, 0), 0.04 * face_px).astype(np.int16) + (25, -10, -20)
    bad[face] = smear.clip(0, 255).astype(np.uint8)[face]
    return clean, bad, face


def _ncc(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
    """Correlation of the gray faces: the structure, whatever the colour grading."""
    x, y = (cv2.cvtColor(v, cv2.COLOR_RGB2GRAY)[m].astype(np.float64) for v in (a, b))
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def test_small_faces_are_found_and_refined_towards_the_target(scene):
    """A 32 px face in a 350 px frame over a scene (the astronaut as a full-body person at the
    driver's size): the face mesh alone misses it (why the astronaut frames came out
    unchanged), the upscaled crop finds it, and the output face differs from the input and
    is closer to the target's face (the clean frame): in structure with the frame's colours
    kept (color_match), in colour too without."""
    clean, bad, face = _small_scene(scene["img"], 32)
    with F.MediaPipeFaceLandmarks() as det:
        assert det(bad) is None
    target = rgb_uint8_to_image(scene["img"])
    for color_match in (True, False):
        (model,) = LoadFaceRefine().load("weightless", "mediapipe", color_match=color_match)
        out, missing, report = FaceRefine().refine(model, rgb_uint8_to_image(bad), target)
        got = (out[0].numpy() * 255 + 0.5).astype(np.uint8)
        assert missing == 0 and "refined the face in 1 of 1" in report, report
        assert (got != bad)[face].any(-1).mean() > 0.5  # the face region visibly changed
        assert _ncc(got, clean, face) > _ncc(bad, clean, face) + 0.003
        if not color_match:
            assert psnr(got, clean, face) > psnr(bad, clean, face) + 3.0
    # found through the parsing's face box (as in the workflows): the same
    labels = np.zeros((1, 350, 350), np.uint8)
    labels[0][face] = LABEL["face"]
    out2, missing2, _ = FaceRefine().refine(model, rgb_uint8_to_image(bad), target,
                                            Parsing(torch.from_numpy(labels)))
    got2 = (out2[0].numpy() * 255 + 0.5).astype(np.uint8)
    assert missing2 == 0 and psnr(got2, clean, face) > psnr(bad, clean, face) + 2.0


def test_tiny_faces_pass_through_with_a_report(scene):
    """A full-body target whose face is ~14 px, and a frame whose face is ~14 px: nothing
    stops, the frames come back unchanged and the report says why."""
    import time

    clean, _, _ = _small_scene(scene["img"], 14, size=256)
    _, bad, _ = _small_scene(scene["img"], 14, size=512)
    (model,) = LoadFaceRefine().load("weightless", "mediapipe")
    frames = rgb_uint8_to_image([scene["bad"], bad])
    t0 = time.perf_counter()
    out, missing, report = FaceRefine().refine(model, frames, rgb_uint8_to_image(clean))
    assert time.perf_counter() - t0 < 5
    assert missing == 2 and torch.equal(out, frames)
    assert "skipped" in report and "passed through" in report, report
    # a good target, a frame with a face under min_face_px: that frame passes, named
    out, missing, report = FaceRefine().refine(model, frames, rgb_uint8_to_image(scene["img"]))
    assert missing == 1 and torch.equal(out[1], frames[1]) and not torch.equal(out[0], frames[0])
    assert "refined the face in 1 of 2" in report and "frame(s) 1" in report, report
    # the widget decides: a face of 40 px is refused at min_face_px=64
    _, bad40, _ = _small_scene(scene["img"], 40)
    out, missing, report = FaceRefine().refine(model, rgb_uint8_to_image(bad40),
                                               rgb_uint8_to_image(scene["img"]), None, 64)
    assert missing == 1 and "min_face_px=64" in report, report


def test_min_face_px_default_is_where_landmarks_stay_accurate(scene):
    """The default is the measured limit: just above MIN_FACE_PX the crop-and-upscale
    landmarks are within 1.5% of the face size of the full-size face's; at half of it, no
    usable face."""
    img, lm0 = scene["img"], scene["lm_t"]
    with F.MediaPipeFaceLandmarks() as det:
        find = F.FaceFinder(det)
        for px, ok in ((F.MIN_FACE_PX + 3, True), (F.MIN_FACE_PX // 2, False)):
            s = px / F.face_size(lm0)
            mat = np.array([[s, 0, 60.3], [0, s, 40.7]])
            small = cv2.warpAffine(cv2.GaussianBlur(img, (0, 0), 0.5 / s), mat, (256, 256),
                                   flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
            found = find(small)
            if ok:
                err = np.abs(found.landmarks - F.transform_points(lm0, mat)).mean()
                assert found.status == "ok" and err < 0.015 * px, (found.status, err)
            else:
                assert found.landmarks is None and found.status in ("small", "none")
        find.close()
