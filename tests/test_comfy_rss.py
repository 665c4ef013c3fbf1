"""scripts/comfy_rss.py: the memory figures of docs/comfyui.md come from it. It records a
process's peak RSS, and its guard stops a process that grows past the limit."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from comfy_rss import main  # scripts/ is on the path (conftest)


def test_peak_is_recorded_and_the_guard_stops_a_growing_process(tmp_path):
    grow = subprocess.Popen([sys.executable, "-c",
                             "import time\nb = bytearray(300 * 2**20)\ntime.sleep(60)\n"])
    try:
        time.sleep(1.0)
        out = tmp_path / "rss.json"
        assert main(["--pid", str(grow.pid), "--out", str(out), "--limit-gib", "0.1",
                     "--seconds", "20"]) == 0
        report = json.loads(out.read_text())
        assert report["peak_rss_gib"] > 0.25
        assert report["killed"] and "rss" in report["killed"]
        assert grow.wait(timeout=10) != 0  # the guard stopped it
    finally:
        if grow.poll() is None:
            grow.kill()


def test_a_quiet_process_is_only_measured(tmp_path):
    idle = subprocess.Popen([sys.executable, "-c", "import time\ntime.sleep(30)\n"])
    try:
        out = tmp_path / "rss.json"
        main(["--pid", str(idle.pid), "--out", str(out), "--seconds", "0.5"])
        report = json.loads(out.read_text())
        assert report["killed"] is None and report["samples"]
        assert idle.poll() is None  # still running
    finally:
        idle.kill()
