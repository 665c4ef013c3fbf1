"""Golden checks of the learned backends, written once and run two ways:

- ``pytest -m real_weights`` (tests/test_real_weights.py) on the REAL files, where they are
  already on disk (the models folders or the cache; nothing is downloaded), with thresholds;
- a normal test (tests/test_real_weights.py, last section) on the generated stand-ins, so
  every line here runs in CI although the thresholds only mean something on real files.

Each ``check_*`` takes file paths and images and returns what it measured.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from dance_reenact.models.io import weights

# Captured when this module is imported (collection), before tests/conftest.py points
# DANCE_REENACT_MODELS at an empty folder for every test: the user's models folder(s), an
# optional DANCE_REENACT_REAL_WEIGHTS (os.pathsep-separated) and the cache.
REAL_ROOTS: list[Path] = [Path(p) for p in os.environ.get("DANCE_REENACT_REAL_WEIGHTS", "")
                          .split(os.pathsep) if p] + weights.search_roots()
DEV_CLIPS = Path(os.environ.get("DANCE_REENACT_DEV_CLIPS", "/work/shared/dev_clips"))


def find_real(name: str, roots: list[Path] | None = None) -> tuple[Path | None, str]:
    """(verified path, "") of registry entry ``name`` in ``roots``, or (None, why): the one
    line a skipped test prints. Looks where :func:`weights.resolve` would, never downloads."""
    spec = weights.REGISTRY[name]
    roots = REAL_ROOTS if roots is None else roots
    for root in roots:
        for cand in (weights.cache_path(spec, root), root / spec.disk_name):
            if cand.is_file():
                weights.verify_file(cand, spec)  # a wrong file is an error, not a skip
                return cand, ""
    return None, (f"{name} ({spec.repo_id}/{spec.filename}) is not in "
                  f"{', '.join(map(str, roots)) or 'any models folder'}")


def dev_photo() -> np.ndarray | None:
    """The first still in the shared dev clips folder (RGB uint8), or None."""
    import cv2

    for p in sorted(DEV_CLIPS.glob("*")) if DEV_CLIPS.is_dir() else []:
        if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is not None:
                return np.ascontiguousarray(img[..., ::-1])
    return None


# -- references from MediaPipe (weights ship with the mediapipe wheel) ------------------------

def mediapipe_face_68(rgb: np.ndarray) -> np.ndarray | None:
    from dance_reenact.models.compositing.face import MediaPipeFaceLandmarks

    return MediaPipeFaceLandmarks()(rgb)


def mediapipe_person(rgb: np.ndarray):
    from dance_reenact.models.perception.mediapipe_holistic import detect_people

    dets = detect_people(rgb, with_mask=True, derive_hands=False)
    return dets[0] if dets else None


# -- checks ---------------------------------------------------------------------------------

def check_schp(net, rgb: np.ndarray, face_box: tuple[int, int, int, int]) -> dict:
    """Share of SCHP's face and hair labels among the pixels of ``face_box`` (x0, y0, x1, y1).
    ``net``: an SCHP network or ONNX callable (``SCHPParser`` input)."""
    from dance_reenact.models.core.schema import LABEL
    from dance_reenact.models.perception.schp import SCHPParser

    labels = SCHPParser(net).parse(rgb)
    x0, y0, x1, y1 = face_box
    inside = labels[y0:y1, x0:x1]
    return {"face": float((inside == LABEL["face"]).mean()),
            "face_hair": float(np.isin(inside, (LABEL["face"], LABEL["hair"])).mean())}


def check_dwpose(det_path: Path, pose_path: Path, rgb: np.ndarray, ref) -> dict:
    """Pixel distance of DWPose's nose and wrists from MediaPipe's (``ref``: a Person)."""
    from dance_reenact.models.core.schema import BODY
    from dance_reenact.models.perception.dwpose import DWPoseOnnx

    dets = DWPoseOnnx(det_path, pose_path, providers=["CPUExecutionProvider"])(rgb)
    out = {"people": len(dets)}
    if dets and ref is not None:
        for k in ("nose", "right_wrist", "left_wrist"):
            a, b = dets[0].person.body[BODY[k]], ref.body[BODY[k]]
            out[k] = float(np.hypot(*(a[:2] - b[:2]))) if a[2] > 0 and b[2] > 0 else np.nan
    return out


def check_densepose(path: Path, rgb: np.ndarray, person_mask: np.ndarray) -> dict:
    """DensePose R50's foreground against a person mask: its blobs (one per person found,
    those over 1% of the frame), the share of the mask's bounding box its own covers."""
    import cv2

    from dance_reenact.models.perception.densepose import (
        DensePoseTorchScript,
        load_densepose_torchscript,
    )

    dp = DensePoseTorchScript(load_densepose_torchscript(path))(rgb)
    fg, person = dp.index > 0, person_mask > 0.5
    n, _, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8))
    blobs = int((stats[1:, cv2.CC_STAT_AREA] > 0.01 * fg.size).sum())
    out = {"blobs": blobs, "box_covers_mask": 0.0,
           "fg_on_person": float((fg & person).sum() / max(1, fg.sum()))}
    if fg.any() and person.any():
        ys, xs = np.nonzero(fg)
        py, px = np.nonzero(person)
        inside = ((px >= xs.min() - 4) & (px <= xs.max() + 4) & (py >= ys.min() - 4)
                  & (py <= ys.max() + 4))
        out["box_covers_mask"] = float(inside.mean())
    return out


def check_facenet(path: Path, rgb: np.ndarray, other: np.ndarray) -> dict:
    """Cosine similarity of the face embedding of ``rgb`` with a 4 px shifted crop of itself
    and with ``other`` (all 160x160 RGB crops taken by the caller)."""
    from dance_reenact.models.networks.facenet import load_facenet, standardize

    net = load_facenet(path)

    def emb(img: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            e = net(standardize(t))
        return torch.nn.functional.normalize(e.flatten(1), dim=1)[0]

    a = emb(rgb[4:164, 4:164])
    return {"shifted": float(a @ emb(rgb[:160, 8:168])), "other": float(a @ emb(other))}


def check_vgg19(path: Path, rgb: np.ndarray) -> list[int]:
    """ImageNet top-5 class indices of timm's vgg19 file (torchvision layout, 224 centre crop,
    ImageNet mean/std)."""
    import cv2
    import torchvision
    from safetensors.torch import load_file

    state = load_file(str(path))
    net = torchvision.models.vgg19()
    tv = {k: v for k, v in state.items() if k.startswith("features.")}
    tv["classifier.0.weight"] = state["pre_logits.fc1.weight"].flatten(1)
    tv["classifier.0.bias"] = state["pre_logits.fc1.bias"]
    tv["classifier.3.weight"] = state["pre_logits.fc2.weight"].flatten(1)
    tv["classifier.3.bias"] = state["pre_logits.fc2.bias"]
    tv["classifier.6.weight"] = state["head.fc.weight"]
    tv["classifier.6.bias"] = state["head.fc.bias"]
    net.load_state_dict(tv, strict=True)
    h, w = rgb.shape[:2]
    k = 256 / min(h, w)
    img = cv2.resize(rgb, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
    y0, x0 = (img.shape[0] - 224) // 2, (img.shape[1] - 224) // 2
    x = torch.from_numpy(img[y0:y0 + 224, x0:x0 + 224].copy()).permute(2, 0, 1)[None] / 255.0
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.inference_mode():
        logits = net.eval()(x)[0]
    return [int(i) for i in logits.topk(5).indices]


def check_lpips(backbone_path: Path, head_path: Path, a: torch.Tensor, b: torch.Tensor) -> dict:
    """Our LPIPS (VGG) vs the ``lpips`` package with the same backbone and its own heads."""
    import lpips

    from dance_reenact.models.metrics import scores as metrics

    ours_model = metrics.load_lpips("vgg", backbone_weights=backbone_path,
                                    head_weights=head_path)
    ref = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)
    feats = ours_model.features.state_dict()
    for s in range(1, ref.net.N_slices + 1):
        sl = getattr(ref.net, f"slice{s}")
        sl.load_state_dict({k: feats[k] for k in sl.state_dict()})
    with torch.no_grad():
        want = ref.eval()(b, a, normalize=True).flatten().numpy()
    return {"ours": metrics.lpips_distance(ours_model, b, a), "reference": want}


def check_fid(path: Path, frames: list[np.ndarray]) -> dict:
    """Our FID Inception features vs pytorch-fid's InceptionV3 fed the same file."""
    import pytorch_fid.inception as pfi

    from dance_reenact.models.metrics import scores as metrics

    model = metrics.load_fid_inception(path)
    ours = metrics.inception_features(model, frames, batch_size=2)
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    orig = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda *a, **k: state
    try:
        ref_model = pfi.InceptionV3([3]).eval()
    finally:
        pfi.load_state_dict_from_url = orig
    with torch.no_grad():
        ref = ref_model(metrics.to_nchw(frames))[0].flatten(1).double().numpy()
    return {"ours": ours, "reference": ref}


def check_lama(path: Path, rgb: np.ndarray, mask: np.ndarray) -> dict:
    """PSNR inside ``mask`` of big-LaMa and of Telea against the original pixels."""
    from dance_reenact.models.compositing.inpaint import LamaInpainter, inpaint_opencv

    def psnr(x: np.ndarray) -> float:
        err = ((x[mask].astype(np.float64) - rgb[mask]) ** 2).mean()
        return float(10 * np.log10(255.0 ** 2 / max(err, 1e-9)))

    holed = rgb.copy()
    holed[mask] = 0
    return {"lama": psnr(LamaInpainter(path)(holed, mask)),
            "telea": psnr(inpaint_opencv(holed, mask, method="telea"))}


def check_fan68(path: Path, rgb: np.ndarray, ref68: np.ndarray | None) -> dict:
    """FAN-68 landmarks vs MediaPipe's 68-point mapping: median and eye/nose/mouth error."""
    from dance_reenact.models.compositing.face import Fan68Landmarks

    lm = Fan68Landmarks(path)(rgb)
    if lm is None or ref68 is None:
        return {"found": lm is not None}
    err = np.hypot(*(lm - ref68).T)
    inner = np.r_[27:68]  # nose, eyes, mouth: the jaw line of the two conventions differs
    return {"found": True, "median_inner": float(np.median(err[inner])),
            "eye_width": float(np.hypot(*(ref68[45] - ref68[36])))}
