"""P2B, the pose-to-body network (paper §3.1, SPEC §3), and its inference.

Its training discriminators live with the trainer (training/gan.py).

``P2BGenerator`` is pix2pixHD's global generator as the paper describes it: input
concat(one-hot target parsing p* (22), driver stick figure (3), driver DensePose I/U/V (3));
a 7x7 conv + ``n_down`` stride-2 convs, each with BatchNorm + ReLU; ``n_res`` residual blocks
(the paper gives no number; pix2pixHD uses 9); ``n_down`` transposed convs with InstanceNorm +
ReLU; a 7x7 conv and a sigmoid over the 22 label channels.

Inference (:func:`predict_parsing`) registers the person into the network's working
resolution: the driver is cropped around its keypoints / DensePose / stick figure to the
working aspect ratio, the target parsing around its person mask, the network runs on the
pair, and the argmax labels are pasted back at the driver frame's size and position. Frames
are processed one small batch at a time; the 22-channel one-hot exists only for that batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from ..core.inference import inference_input, prepare_for_inference
from ..core.schema import NUM_LABELS, Person
from ..geometry.crop import CropBox, crop_to_box, person_box, points_to_crop
from ..geometry.render import draw_pose
from ..io.loading import register_architecture

__all__ = [
    "P2BGenerator",
    "one_hot_labels",
    "p2b_input",
    "DriverFrame",
    "crop_labels",
    "paste_labels",
    "driver_inputs",
    "predict_parsing",
]


def one_hot_labels(labels: torch.Tensor, num_labels: int = NUM_LABELS) -> torch.Tensor:
    """(B, H, W) integer labels -> (B, num_labels, H, W) float one-hot."""
    if labels.ndim != 3:
        raise ValueError(f"labels must be (B, H, W), got {tuple(labels.shape)}")
    lab = labels.long()
    if lab.numel() and (int(lab.max()) >= num_labels or int(lab.min()) < 0):
        raise ValueError(f"labels must lie in [0, {num_labels}), got "
                         f"{int(lab.min())}..{int(lab.max())}")
    out = torch.zeros(lab.shape[0], num_labels, *lab.shape[1:], device=lab.device)
    return out.scatter_(1, lab.unsqueeze(1), 1.0)


def p2b_input(source_labels: torch.Tensor, stick: torch.Tensor, iuv: torch.Tensor,
              num_labels: int = NUM_LABELS) -> torch.Tensor:
    """Build P2B's input.

    Args:
        source_labels: (B, H, W) integer target parsing p*.
        stick: (B, 3, H, W) float stick figure in 0..1.
        iuv: (B, 3, H, W) float DensePose I/24, U, V.
    Returns:
        (B, num_labels + 6, H, W) float.
    """
    return torch.cat([one_hot_labels(source_labels, num_labels), stick.float(), iuv.float()],
                     dim=1)


class _ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.BatchNorm2d(ch), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.BatchNorm2d(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register_architecture
class P2BGenerator(nn.Module):
    """Parsing + stick figure + DensePose -> parsing in the new pose.

    Args:
        in_channels: 22 + 3 + 3.
        out_channels: labels predicted (22).
        ngf: channels after the first conv; doubled per downsampling, capped at ``max_ch``.
        n_down: stride-2 downsamplings (input sides must be multiples of ``2**n_down``).
        n_res: residual blocks at the bottleneck.
        work_height, work_width: the working resolution the inference crops the person to
            (a multiple of ``2**n_down``); stored so a checkpoint knows how it was trained.

    Shape: in (B, in_channels, H, W) -> out (B, out_channels, H, W) in (0, 1).
    """

    def __init__(self, *, in_channels: int = NUM_LABELS + 6, out_channels: int = NUM_LABELS,
                 ngf: int = 64, n_down: int = 4, n_res: int = 9, max_ch: int = 1024,
                 work_height: int = 512, work_width: int = 320) -> None:
        super().__init__()
        m = 2 ** n_down
        if work_height % m or work_width % m:
            raise ValueError(f"working size {work_height}x{work_width} must be a multiple of "
                             f"2**n_down = {m}")
        self.config = dict(in_channels=in_channels, out_channels=out_channels, ngf=ngf,
                           n_down=n_down, n_res=n_res, max_ch=max_ch, work_height=work_height,
                           work_width=work_width)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7),
                                   nn.BatchNorm2d(ngf), nn.ReLU(True)]
        ch = ngf
        for _ in range(n_down):
            nxt = min(ch * 2, max_ch)
            layers += [nn.Conv2d(ch, nxt, 3, stride=2, padding=1), nn.BatchNorm2d(nxt),
                       nn.ReLU(True)]
            ch = nxt
        layers += [_ResBlock(ch) for _ in range(n_res)]
        for i in range(n_down):
            nxt = max(min(ngf * 2 ** (n_down - i - 1), max_ch), ngf)
            layers += [nn.ConvTranspose2d(ch, nxt, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(nxt), nn.ReLU(True)]
            ch = nxt
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7)]
        self.net = nn.Sequential(*layers)

    @property
    def multiple(self) -> int:
        return 2 ** int(self.config["n_down"])

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid scores (B, out_channels, H, W); the training CE uses these."""
        m = self.multiple
        if x.ndim != 4 or x.shape[1] != self.config["in_channels"]:
            raise ValueError(f"P2BGenerator expects (B, {self.config['in_channels']}, H, W), "
                             f"got {tuple(x.shape)}")
        if x.shape[2] % m or x.shape[3] % m:
            raise ValueError(f"P2BGenerator input sides must be multiples of {m}, got "
                             f"{x.shape[2]}x{x.shape[3]}")
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


# --------------------------------------------------------------------------------------------
# Registration: crop the person to the working resolution and paste back (boxes: .crop)
# --------------------------------------------------------------------------------------------


def _affine_to(box: CropBox, out_hw: tuple[int, int]) -> np.ndarray:
    """2x3 map frame pixels -> working pixels, the pixel-centre convention of
    :func:`.crop.points_to_crop`."""
    sx, sy = out_hw[1] / box.width, out_hw[0] / box.height
    return np.array([[sx, 0.0, (0.5 - box.x0) * sx - 0.5], [0.0, sy, (0.5 - box.y0) * sy - 0.5]])


def _affine_from(box: CropBox, out_hw: tuple[int, int]) -> np.ndarray:
    """2x3 map working pixels -> frame pixels (inverse of :func:`_affine_to`)."""
    sx, sy = box.width / out_hw[1], box.height / out_hw[0]
    return np.array([[sx, 0.0, (0.5 * sx - 0.5) + box.x0], [0.0, sy, (0.5 * sy - 0.5) + box.y0]])


def crop_labels(labels: np.ndarray, box: CropBox, out_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour crop/resize of a uint8 label map (or any array) into the working
    frame; 0 outside the source frame."""
    return cv2.warpAffine(labels, _affine_to(box, out_hw), (out_hw[1], out_hw[0]),
                          flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def paste_labels(work_labels: np.ndarray, box: CropBox, frame_hw: tuple[int, int]
                 ) -> np.ndarray:
    """Working-resolution labels back into a (H, W) frame; 0 (background) outside the box."""
    return cv2.warpAffine(work_labels, _affine_from(box, work_labels.shape[:2]),
                          (frame_hw[1], frame_hw[0]), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def labels_box(labels: np.ndarray, out_hw: tuple[int, int], margin: float = 0.1) -> CropBox:
    """The working-aspect box around a parsing's person pixels (ValueError when empty)."""
    return person_box(labels.shape[:2], mask=labels > 0, out_hw=out_hw, margin=margin)


@dataclass
class DriverFrame:
    """One driver frame's inputs in frame pixels: keypoints and/or a stick figure, and
    DensePose (I uint8 (H, W), U and V float (H, W))."""

    height: int
    width: int
    person: Person | None = None
    stick: np.ndarray | None = None  # uint8 (H, W, 3)
    index: np.ndarray | None = None
    u: np.ndarray | None = None
    v: np.ndarray | None = None

    def box(self, out_hw: tuple[int, int], margin: float = 0.1) -> CropBox:
        """The working-aspect box around the driver: keypoints and DensePose, or the stick
        figure's drawn pixels when there are no keypoints. ValueError: no person shown."""
        mask = None
        if self.index is not None:
            mask = self.index > 0
        if self.person is None and self.stick is not None:
            st = self.stick.max(axis=2) > 0
            mask = st if mask is None else (mask | st)
        has_kp = self.person is not None and self.person.bbox() is not None
        return person_box((self.height, self.width), points=self.person if has_kp else None,
                          mask=mask, out_hw=out_hw, margin=margin)


def driver_inputs(frame: DriverFrame, box: CropBox, out_hw: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The driver's stick figure (3, h, w) and IUV (3, h, w) float32 in the working frame.

    With keypoints, the stick figure is redrawn at the working resolution (sharper than
    resampling a drawing); otherwise the given stick image is resampled.
    """
    oh, ow = out_hw
    if frame.person is not None:
        p = frame.person
        p = Person(*(np.concatenate([points_to_crop(a[:, :2], box, out_hw), a[:, 2:]], axis=1)
                     for a in (p.body, p.face, p.left_hand, p.right_hand)))
        stick = draw_pose([p], oh, ow)
    elif frame.stick is not None:
        stick = crop_to_box(frame.stick, box, out_hw)  # area-averaged when shrinking
    else:
        raise ValueError("a driver frame needs a stick figure or keypoints")
    if frame.index is None or frame.u is None or frame.v is None:
        raise ValueError("a driver frame needs DensePose I, U and V")
    i = crop_labels(frame.index, box, out_hw).astype(np.float32) / 24.0
    u = crop_labels(frame.u.astype(np.float32), box, out_hw)
    v = crop_labels(frame.v.astype(np.float32), box, out_hw)
    return (stick.astype(np.float32).transpose(2, 0, 1) / 255.0,
            np.stack([i, u, v]).astype(np.float32))


def _batched(it: Iterable, n: int) -> Iterator[list]:
    buf: list = []
    for x in it:
        buf.append(x)
        if len(buf) == n:
            yield buf
            buf = []
    if buf:
        yield buf


@torch.inference_mode()
def predict_parsing(model: P2BGenerator, target_labels: np.ndarray,
                    frames: Iterable[DriverFrame], *, device: torch.device | str = "cpu",
                    batch_size: int = 4, margin: float = 0.1,
                    work_hw: tuple[int, int] | None = None,
                    optimize: bool = True) -> Iterator[np.ndarray]:
    """Run P2B over driver frames, one small batch at a time.

    The network runs as its :func:`.inference.prepare_for_inference` copy for ``device``
    (BatchNorm folded, channels-last; fp16 on CUDA), made once and cached; ``optimize=False``
    runs ``model`` itself (the plain eval path, for comparisons).

    Args:
        model: a :class:`P2BGenerator` (its eval-mode statistics are used).
        target_labels: uint8 (H, W) target parsing p* at any size and framing.
        frames: driver frames (each with its own size).
        work_hw: working resolution; default the model's ``work_height``/``work_width``.
    Yields:
        uint8 (frame.height, frame.width) labels per driver frame, the person at the driver's
        position (background outside the registered box).
    Raises:
        ValueError: an empty target parsing, or a frame without a person.
    """
    oh, ow = work_hw or (int(model.config["work_height"]), int(model.config["work_width"]))
    if not (target_labels > 0).any():
        raise ValueError("the target parsing has no person (every pixel is background)")
    src_np = crop_labels(target_labels, labels_box(target_labels, (oh, ow), margin), (oh, ow))
    src = torch.from_numpy(src_np).long().to(device)
    net = prepare_for_inference(model, device) if optimize else model
    for chunk in _batched(enumerate(frames), batch_size):
        sticks, iuvs, boxes = [], [], []
        for k, fr in chunk:
            try:
                box = fr.box((oh, ow), margin)
            except ValueError as exc:
                raise ValueError(f"driver frame {k} shows no person (no keypoints, no "
                                 "DensePose, empty stick figure)") from exc
            st, iuv = driver_inputs(fr, box, (oh, ow))
            sticks.append(st)
            iuvs.append(iuv)
            boxes.append(box)
        n = len(chunk)
        x = p2b_input(src.unsqueeze(0).expand(n, -1, -1),
                      torch.from_numpy(np.stack(sticks)).to(device),
                      torch.from_numpy(np.stack(iuvs)).to(device),
                      int(model.config["out_channels"]))
        labels = net.logits(inference_input(x, net)).argmax(dim=1).to(torch.uint8).cpu().numpy()
        for (_, fr), lab, box in zip(chunk, labels, boxes):
            yield paste_labels(lab, box, (fr.height, fr.width))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
