"""``reenact prepare``: OpenPose keypoints and DensePose for every annotated frame of a
VIP-layout dataset (the inputs P2B training reads; layout in :mod:`.data`).

The perception backends are called by name through :func:`perception_backends` (the pose
backends ``mediapipe`` / ``openpose`` / ``dwpose`` and the DensePose backends ``weightless`` /
``densepose_r50`` of the perception nodes). Keypoints and DensePose computed elsewhere can be
imported instead with ``--keypoints-dir`` / ``--densepose-dir`` (same ``<video>/<frame>``
names: POSE_KEYPOINT ``.json``, DensePose ``.npz`` with arrays ``i``, ``u``, ``v``).

Writes ``<root>/prepared/<video>/<frame>.json`` (one POSE_KEYPOINT frame, the largest person,
pixels) and ``<root>/prepared/<video>/<frame>.dp.npz`` (``i`` uint8, ``u``/``v`` float16).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..models.core.schema import Person, frame_to_people, people_to_frame, select_person

logger = logging.getLogger(__name__)

PoseFn = Callable[[np.ndarray], Person | None]
DenseFn = Callable[[np.ndarray, Person | None], tuple[np.ndarray, np.ndarray, np.ndarray]]


def perception_backends(pose_backend: str, densepose_backend: str, *, device: str = "cpu"
                        ) -> tuple[PoseFn, DenseFn, Callable[[], None]]:
    """The perception nodes' backends as two functions, ``rgb -> Person | None`` and
    ``(rgb, person) -> (I, U, V)``, and a ``close()`` that releases them.

    Raises:
        RuntimeError: the perception backends are not part of this installation (then import
            precomputed files with ``--keypoints-dir`` / ``--densepose-dir``).
    """
    try:
        from ..models.perception import densepose as dp_mod
        from ..models.perception.pose import PoseEstimator
    except ImportError as exc:
        raise RuntimeError(
            "the perception backends (models/perception: OpenPose / DensePose) are not in this "
            f"installation ({exc}). Compute keypoints and DensePose elsewhere and import them "
            "with --keypoints-dir and --densepose-dir") from exc
    if densepose_backend not in ("weightless", "densepose_r50"):
        raise ValueError(f"unknown DensePose backend {densepose_backend!r}; use weightless or "
                         "densepose_r50")
    estimator = PoseEstimator(pose_backend, device=device)

    def pose(rgb: np.ndarray) -> Person | None:
        dets = estimator(rgb)
        return select_person([d.person for d in dets]) if dets else None

    if densepose_backend == "weightless":
        def dense(rgb: np.ndarray, person: Person | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            m = dp_mod.densepose_from_keypoints(person, None, rgb.shape[0], rgb.shape[1])
            return m.index, m.u, m.v
    else:
        from ..models.io.weights import resolve

        net = dp_mod.DensePoseTorchScript(
            dp_mod.load_densepose_torchscript(resolve("densepose_r50"), device), device=device)

        def dense(rgb: np.ndarray, person: Person | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            m = net(rgb)
            return m.index, m.u, m.v
    return pose, dense, estimator.close


def _annotated_frames(root: Path) -> Iterator[tuple[str, str, Path | None]]:
    from .data import _IMAGE_EXTS, _find_dir

    cat = _find_dir(root, "Category_ids")
    if cat is None:
        raise FileNotFoundError(f"{root} has no Category_ids/ folder: not a VIP layout")
    images = root / "Images"
    for vdir in sorted(p for p in cat.iterdir() if p.is_dir()):
        for lab in sorted(vdir.glob("*.png")):
            img = next((images / vdir.name / (lab.stem + e) for e in _IMAGE_EXTS
                        if (images / vdir.name / (lab.stem + e)).is_file()), None)
            yield vdir.name, lab.stem, img


def _read_keypoints(path: Path) -> Person | None:
    frame = json.loads(path.read_text())
    if isinstance(frame, list):
        if not frame:
            return None
        frame = frame[0]
    return select_person(frame_to_people(frame, what=str(path)))


def _read_densepose(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path) as z:
        keys = {k.lower(): k for k in z.files}
        if not all(k in keys for k in ("i", "u", "v")):
            raise ValueError(f"{path} must hold arrays i, u, v (got {z.files})")
        return (z[keys["i"]].astype(np.uint8), z[keys["u"]].astype(np.float32),
                z[keys["v"]].astype(np.float32))


def prepare_dataset(root: str | Path, *, pose_backend: str = "mediapipe",
                    densepose_backend: str = "weightless", keypoints_dir: str | None = None,
                    densepose_dir: str | None = None, overwrite: bool = False,
                    device: str = "cpu") -> int:
    """Fill ``<root>/prepared`` for every annotated frame. Returns the number of frames written.

    Frames where no person is found get an empty POSE_KEYPOINT frame and an empty DensePose
    (the training reader skips nothing silently: such a frame fails loudly when drawn).
    """
    root = Path(root)
    out_root = root / "prepared"
    pose_fn: PoseFn | None = None
    dense_fn: DenseFn | None = None
    close: Callable[[], None] = lambda: None  # noqa: E731
    if keypoints_dir is None or densepose_dir is None:
        pose_fn, dense_fn, close = perception_backends(pose_backend, densepose_backend,
                                                       device=device)
    try:
        return _prepare(root, out_root, pose_fn, dense_fn, keypoints_dir, densepose_dir,
                        overwrite)
    finally:
        close()


def _prepare(root: Path, out_root: Path, pose_fn: PoseFn | None, dense_fn: DenseFn | None,
             keypoints_dir: str | None, densepose_dir: str | None, overwrite: bool) -> int:
    from PIL import Image

    written = 0
    for video, stem, img_path in _annotated_frames(root):
        js = out_root / video / f"{stem}.json"
        dp = out_root / video / f"{stem}.dp.npz"
        if js.is_file() and dp.is_file() and not overwrite:
            continue
        rgb = None
        if img_path is not None:
            rgb = np.array(Image.open(img_path).convert("RGB"))
        if keypoints_dir is not None:
            src = Path(keypoints_dir) / video / f"{stem}.json"
            if not src.is_file():
                raise FileNotFoundError(f"{src} is missing (--keypoints-dir)")
            person = _read_keypoints(src)
        else:
            if rgb is None:
                raise FileNotFoundError(f"no image for {video}/{stem} under {root / 'Images'}")
            person = pose_fn(rgb)  # type: ignore[misc]
        if densepose_dir is not None:
            src = Path(densepose_dir) / video / f"{stem}.npz"
            if not src.is_file():
                raise FileNotFoundError(f"{src} is missing (--densepose-dir)")
            i, u, v = _read_densepose(src)
        else:
            if rgb is None:
                raise FileNotFoundError(f"no image for {video}/{stem} under {root / 'Images'}")
            i, u, v = dense_fn(rgb, person)  # type: ignore[misc]
        h, w = i.shape
        js.parent.mkdir(parents=True, exist_ok=True)
        js.write_text(json.dumps(people_to_frame([person] if person is not None else [], w, h)))
        np.savez_compressed(dp, i=i.astype(np.uint8), u=u.astype(np.float16),
                            v=v.astype(np.float16))
        written += 1
    logger.info("prepared %d frames under %s", written, out_root)
    return written


def add_prepare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="compute OpenPose keypoints and DensePose for a "
                       "VIP-layout dataset (P2B training input)",
                       description=__doc__.splitlines()[0])
    p.add_argument("root", help="dataset folder (Images/, Category_ids/ ...)")
    p.add_argument("--pose-backend", default="mediapipe",
                   choices=["mediapipe", "openpose", "dwpose"])
    p.add_argument("--densepose-backend", default="weightless",
                   choices=["weightless", "densepose_r50"])
    p.add_argument("--keypoints-dir", default=None,
                   help="import POSE_KEYPOINT <video>/<frame>.json files instead of running pose")
    p.add_argument("--densepose-dir", default=None,
                   help="import <video>/<frame>.npz (i, u, v) files instead of running DensePose")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_prepare)


def _cmd_prepare(args: argparse.Namespace) -> int:
    n = prepare_dataset(args.root, pose_backend=args.pose_backend,
                        densepose_backend=args.densepose_backend,
                        keypoints_dir=args.keypoints_dir, densepose_dir=args.densepose_dir,
                        overwrite=args.overwrite, device=args.device)
    print(f"prepared {n} frames under {Path(args.root) / 'prepared'}")
    return 0
