"""Measure a running ComfyUI server's memory while a workflow runs (docs/comfyui.md, section 3).

    python scripts/comfy_rss.py --pid PID --out rss.json --client-id ID [--server URL]
    python scripts/comfy_client.py --server URL --client-id ID --only offline_weightless ...

Polls the server process's RSS (children included) every 0.1 s until the prompt of that client
finishes (or ``--seconds`` pass), and with ``websocket-client`` installed also listens to the
server's websocket under the same client id, so the RSS at each node's start and the peak while
each node ran are recorded. A guard stops the SERVER (SIGTERM, then SIGKILL) when its RSS passes
``--limit-gib`` or the machine's available memory drops under ``--min-available-gib``, so a run
that would not fit does not take the machine down. Writes one JSON file: baseline, peak, the
node at the peak, per-node maxima, events and samples.

It only measures: it neither installs nor starts ComfyUI.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

GIB = float(2 ** 30)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pid", type=int, required=True, help="the ComfyUI server's process id")
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    ap.add_argument("--client-id", default="", help="the client id the workflow is queued with")
    ap.add_argument("--server", default="http://127.0.0.1:8188")
    ap.add_argument("--limit-gib", type=float, default=16.0)
    ap.add_argument("--min-available-gib", type=float, default=3.0)
    ap.add_argument("--seconds", type=float, default=3600.0, help="stop polling after this")
    args = ap.parse_args(argv)

    import psutil

    proc = psutil.Process(args.pid)

    def rss() -> int:
        return proc.memory_info().rss + sum(c.memory_info().rss
                                            for c in proc.children(recursive=True))

    base = rss()
    t0 = time.time()
    state: dict = {"node": None, "peak": base, "peak_t": 0.0, "peak_node": None,
                   "killed": None, "done": False}
    events: list = []
    samples: list = []
    node_max: dict[str, float] = {}
    stop = threading.Event()

    def listen() -> None:
        try:
            import websocket  # websocket-client: optional, for the per-node figures
        except ImportError:
            print("websocket-client is not installed: peak only, no per-node figures",
                  file=sys.stderr)
            return
        url = args.server.replace("http", "ws", 1).rstrip("/") + f"/ws?clientId={args.client_id}"
        ws = websocket.create_connection(url, timeout=args.seconds)
        while not stop.is_set():
            try:
                msg = ws.recv()
            except Exception:  # noqa: BLE001 - the server went away: stop listening
                return
            if isinstance(msg, bytes):
                continue
            m = json.loads(msg)
            if m.get("type") not in ("executing", "execution_cached", "execution_error",
                                     "execution_success", "executed"):
                continue
            d = m.get("data", {})
            try:
                r = rss()
            except psutil.NoSuchProcess:
                return
            if m["type"] == "executing":
                state["node"] = d.get("node")
            events.append((round(time.time() - t0, 2), m["type"],
                           d.get("node") or d.get("nodes") or d.get("node_id"),
                           round(r / GIB, 3)))
            if m["type"] in ("execution_success", "execution_error"):
                state["done"] = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.client_id:
        threading.Thread(target=listen, daemon=True).start()
    while not stop.is_set() and not state["done"] and time.time() - t0 < args.seconds:
        try:
            r = rss()
        except psutil.NoSuchProcess:
            break
        now = time.time() - t0
        n = str(state["node"])
        node_max[n] = max(node_max.get(n, 0.0), r / GIB)
        if r > state["peak"]:
            state.update(peak=r, peak_t=now, peak_node=state["node"])
        samples.append((round(now, 1), round(r / GIB, 3)))
        avail = psutil.virtual_memory().available
        if r > args.limit_gib * GIB or avail < args.min_available_gib * GIB:
            state["killed"] = (f"rss {r / GIB:.2f} GiB, available {avail / GIB:.2f} GiB at "
                               f"{now:.1f} s in node {n}")
            os.kill(args.pid, signal.SIGTERM)
            time.sleep(5)
            if psutil.pid_exists(args.pid):
                os.kill(args.pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    stop.set()
    report = {"pid": args.pid, "baseline_rss_gib": base / GIB,
              "peak_rss_gib": state["peak"] / GIB, "peak_at_s": state["peak_t"],
              "peak_node": state["peak_node"], "killed": state["killed"],
              "node_max_gib": node_max, "events": events, "samples": samples}
    args.out.write_text(json.dumps(report, indent=0))
    print(f"baseline {base / GIB:.2f} GiB, peak {state['peak'] / GIB:.2f} GiB"
          + (f"; stopped the server: {state['killed']}" if state["killed"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
