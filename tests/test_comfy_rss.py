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


def test_websocket_events_name_the_nodes_and_the_end_of_the_prompt(tmp_path, monkeypatch):
    """With websocket-client (a stand-in here), the events of the client's prompt are recorded
    with the node each one names, and ``execution_success`` ends the measurement."""
    import types

    messages = [json.dumps({"type": "status", "data": {}}), b"\x00preview",
                json.dumps({"type": "executing", "data": {"node": "3"}}),
                json.dumps({"type": "execution_cached", "data": {"nodes": ["1", "2"]}}),
                json.dumps({"type": "executed", "data": {"node": "3"}}),
                json.dumps({"type": "executing", "data": {"node": "5"}}),
                json.dumps({"type": "execution_success", "data": {"prompt_id": "p"}})]
    opened = []

    class Socket:
        def recv(self):
            time.sleep(0.25)
            if not messages:
                raise ConnectionError("closed")
            return messages.pop(0)

    def create_connection(url, timeout):
        opened.append((url, timeout))
        return Socket()

    monkeypatch.setitem(sys.modules, "websocket",
                        types.SimpleNamespace(create_connection=create_connection))
    idle = subprocess.Popen([sys.executable, "-c", "import time\ntime.sleep(30)\n"])
    try:
        out = tmp_path / "rss.json"
        start = time.time()
        assert main(["--pid", str(idle.pid), "--out", str(out), "--client-id", "abc",
                     "--server", "http://host:8188/", "--seconds", "20"]) == 0
        assert time.time() - start < 10  # ended by execution_success, not by --seconds
        report = json.loads(out.read_text())
        assert opened == [("ws://host:8188/ws?clientId=abc", 20.0)]
        assert [e[1:3] for e in report["events"]] == [
            ["executing", "3"], ["execution_cached", ["1", "2"]], ["executed", "3"],
            ["executing", "5"], ["execution_success", None]]
        assert all(e[3] > 0 for e in report["events"])
        assert report["killed"] is None and report["peak_rss_gib"] >= report["baseline_rss_gib"]
        assert set(report["node_max_gib"]) <= {"None", "3", "5"}
        assert "3" in report["node_max_gib"]
        assert idle.poll() is None
    finally:
        idle.kill()
