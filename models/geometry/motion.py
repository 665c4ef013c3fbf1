"""Motion clips: POSE_KEYPOINT sequences stored as JSON (the pack ships one, made by us).

File layout: ``{"name", "fps", "canvas_width", "canvas_height", "frames": [POSE_KEYPOINT
frame, ...]}``; a bare list of frames is accepted too (fps then defaults to 24).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MOTION_DIR = Path(__file__).resolve().parents[2] / "assets" / "motion"
DEFAULT_MOTION = "upper_body_dance"


def list_motions() -> list[str]:
    """Names of the shipped motion clips."""
    return sorted(p.stem for p in MOTION_DIR.glob("*.json"))


def load_motion(name_or_path: str | os.PathLike[str] = DEFAULT_MOTION,
                ) -> tuple[list[dict[str, Any]], float]:
    """Load a motion clip by shipped name or file path.

    Returns:
        (frames, fps): POSE_KEYPOINT frames (comfyui_controlnet_aux layout) and frame rate.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = MOTION_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise ValueError(f"motion clip {str(name_or_path)!r} not found (shipped: "
                         f"{', '.join(list_motions()) or 'none'})")
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"motion clip {path} is not valid JSON ({exc})") from exc
    frames = doc if isinstance(doc, list) else doc.get("frames")
    if not isinstance(frames, list) or not frames:
        raise ValueError(f"motion clip {path} has no frames")
    fps = 24.0 if isinstance(doc, list) else float(doc.get("fps") or 24.0)
    return frames, fps
