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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GIB = float(2 ** 30)
# Websocket messages that mark a node's start or end, or the prompt's end.
EVENTS = ("executing", "execution_cached", "execution_error", "execution_success", "executed")


@dataclass
class _Watch:
    """What the RSS poller and the websocket listener share, and the report is made of."""

    proc: Any                      # psutil.Process of the server
    t0: float                      # time.time() at the start
    baseline: int                  # RSS in bytes at the start
    peak: int                      # the highest RSS so far
    node: Any = None               # the node running now (from ``executing``)
    peak_t: float = 0.0            # seconds after t0 at the peak
    peak_node: Any = None          # the node running at the peak
    killed: str | None = None      # why the guard stopped the server
    done: bool = False             # the prompt finished (success or error)
    events: list = field(default_factory=list)
    samples: list = field(default_factory=list)
    node_max: dict[str, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def rss(self) -> int:
        """The server's RSS now (bytes, children included)."""
        return _tree_rss(self.proc)


def _tree_rss(proc: Any) -> int:
    """A psutil process's RSS in bytes, its children included."""
    return proc.memory_info().rss + sum(c.memory_info().rss
                                        for c in proc.children(recursive=True))


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pid", type=int, required=True, help="the ComfyUI server's process id")
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    ap.add_argument("--client-id", default="", help="the client id the workflow is queued with")
    ap.add_argument("--server", default="http://127.0.0.1:8188")
    ap.add_argument("--limit-gib", type=float, default=16.0)
    ap.add_argument("--min-available-gib", type=float, default=3.0)
    ap.add_argument("--seconds", type=float, default=3600.0, help="stop polling after this")
    return ap


def _listen(watch: _Watch, server: str, client_id: str, timeout: float) -> None:
    """Record the websocket's node events of ``client_id`` with the RSS at each, until
    ``watch.stop``, the prompt's end (sets ``watch.done``) or the server goes away."""
    import psutil

    try:
        import websocket  # websocket-client: optional, for the per-node figures
    except ImportError:
        print("websocket-client is not installed: peak only, no per-node figures",
              file=sys.stderr)
        return
    url = server.replace("http", "ws", 1).rstrip("/") + f"/ws?clientId={client_id}"
    ws = websocket.create_connection(url, timeout=timeout)
    while not watch.stop.is_set():
        try:
            msg = ws.recv()
        except Exception:  # noqa: BLE001 - the server went away: stop listening
            return
        if isinstance(msg, bytes):
            continue
        m = json.loads(msg)
        if m.get("type") not in EVENTS:
            continue
        d = m.get("data", {})
        try:
            r = watch.rss()
        except psutil.NoSuchProcess:
            return
        if m["type"] == "executing":
            watch.node = d.get("node")
        watch.events.append((round(time.time() - watch.t0, 2), m["type"],
                             d.get("node") or d.get("nodes") or d.get("node_id"),
                             round(r / GIB, 3)))
        if m["type"] in ("execution_success", "execution_error"):
            watch.done = True


def _stop_server(pid: int) -> None:
    """SIGTERM, and SIGKILL when the process is still there 5 s later."""
    import psutil

    os.kill(pid, signal.SIGTERM)
    time.sleep(5)
    if psutil.pid_exists(pid):
        os.kill(pid, signal.SIGKILL)


def _poll(watch: _Watch, args: argparse.Namespace) -> None:
    """Sample the RSS every 0.1 s (per-node maxima, the peak) until stopped, the prompt's end
    or ``--seconds``; the guard stops the server past ``--limit-gib`` or under
    ``--min-available-gib`` available."""
    import psutil

    while not watch.stop.is_set() and not watch.done and time.time() - watch.t0 < args.seconds:
        try:
            r = watch.rss()
        except psutil.NoSuchProcess:
            break
        now = time.time() - watch.t0
        n = str(watch.node)
        watch.node_max[n] = max(watch.node_max.get(n, 0.0), r / GIB)
        if r > watch.peak:
            watch.peak, watch.peak_t, watch.peak_node = r, now, watch.node
        watch.samples.append((round(now, 1), round(r / GIB, 3)))
        avail = psutil.virtual_memory().available
        if r > args.limit_gib * GIB or avail < args.min_available_gib * GIB:
            watch.killed = (f"rss {r / GIB:.2f} GiB, available {avail / GIB:.2f} GiB at "
                            f"{now:.1f} s in node {n}")
            _stop_server(args.pid)
            break
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    import psutil

    proc = psutil.Process(args.pid)
    base = _tree_rss(proc)
    watch = _Watch(proc=proc, t0=time.time(), baseline=base, peak=base)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: watch.stop.set())
    if args.client_id:
        threading.Thread(target=_listen, args=(watch, args.server, args.client_id, args.seconds),
                         daemon=True).start()
    _poll(watch, args)
    watch.stop.set()
    report = {"pid": args.pid, "baseline_rss_gib": watch.baseline / GIB,
              "peak_rss_gib": watch.peak / GIB, "peak_at_s": watch.peak_t,
              "peak_node": watch.peak_node, "killed": watch.killed,
              "node_max_gib": watch.node_max, "events": watch.events, "samples": watch.samples}
    args.out.write_text(json.dumps(report, indent=0))
    print(f"baseline {watch.baseline / GIB:.2f} GiB, peak {watch.peak / GIB:.2f} GiB"
          + (f"; stopped the server: {watch.killed}" if watch.killed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
