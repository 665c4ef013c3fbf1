"""The standalone command line: ``reenact <subcommand>``.

It calls the same library functions as the nodes. Subcommands live in modules that expose
``add_parser(subparsers)``; the list below is the only place that names them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

_COMMAND_MODULES: tuple[str, ...] = ("evaluate", "training.b2f", "training.face")


def _cmd_weights(args: argparse.Namespace) -> int:
    from .models import weights

    if args.action == "list":
        for name, spec in weights.REGISTRY.items():
            local = weights.find_local(spec)
            state = f"present at {local}" if local else "not downloaded"
            print(f"{name:20s} {spec.repo_id}/{spec.filename} [{spec.license}] - {state}")
        print(f"download folder: {weights.search_roots()[0]}")
        return 0
    for name in args.names:
        print(weights.resolve(name))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """Until the full offline pipeline lands: render a procedural upper-body dance as
    OpenPose stick figures, to MP4 and a contact sheet."""
    import math

    import numpy as np
    from PIL import Image

    from .models.render import draw_pose
    from .models.schema import BODY, Person
    from .models.video_io import contact_sheet, write_mp4

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    w, h, fps, n = 320, 512, 24, int(args.seconds * 24)

    def pose(t: float) -> Person:
        body = np.zeros((18, 3), np.float32)
        cx, sway = w / 2, 15 * math.sin(2 * math.pi * t / 2)
        pts = {"neck": (cx + sway, 150), "nose": (cx + sway * 1.2, 95),
               "right_shoulder": (cx + sway - 50, 155), "left_shoulder": (cx + sway + 50, 155),
               "right_hip": (cx - 30, 300), "left_hip": (cx + 30, 300)}
        for side, sign, phase in (("right", -1, 0.0), ("left", 1, math.pi)):
            a = 0.8 * math.sin(2 * math.pi * t + phase) - 0.3
            sx, sy = pts[f"{side}_shoulder"]
            ex, ey = sx + sign * 60 * math.cos(a), sy + 60 * math.sin(a)
            pts[f"{side}_elbow"] = (ex, ey)
            pts[f"{side}_wrist"] = (ex + sign * 55 * math.cos(2 * a), ey + 55 * math.sin(2 * a))
        for k, (x, y) in pts.items():
            body[BODY[k]] = (x, y, 1.0)
        return Person(body=body)

    frames = [draw_pose([pose(i / fps)], h, w) for i in range(n)]
    video = out / "demo.mp4"
    write_mp4(frames, video, fps)
    sheet = out / "demo_contact_sheet.png"
    Image.fromarray(contact_sheet(frames[:: max(1, n // 12)][:12])).save(sheet)
    print(f"video: {video}")
    print(f"contact sheet: {sheet}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reenact", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    w = sub.add_parser("weights", help="list or download registered weight files")
    w.add_argument("action", choices=["list", "fetch"])
    w.add_argument("names", nargs="*", help="registry names for 'fetch'")
    w.set_defaults(func=_cmd_weights)

    d = sub.add_parser("demo", help="run the offline demo (no download needed)")
    d.add_argument("--out", default="out/demo", help="output folder")
    d.add_argument("--seconds", type=float, default=10.0)
    d.set_defaults(func=_cmd_demo)

    for mod in _COMMAND_MODULES:
        importlib.import_module(f".{mod}", __package__).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, RuntimeError) as exc:  # our errors are written for people
        logging.getLogger("reenact").error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
