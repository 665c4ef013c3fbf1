"""The benchmark harness runs end to end on a tiny config and prints its table (columns and
rows are checked, timing values are not)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_harness_prints_the_table_for_every_stage(capsys, tmp_path):
    bench = _load()
    out = tmp_path / "table.md"
    assert bench.main(["--frames", "2", "--size", "48x64", "--matmul-n", "256", "--nets", "tiny",
                       "--stream-frames", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fp32 matmul:" in text and "GFLOP/s" in text
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == list(bench.COLUMNS)
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[1:]]
    got = {(r[0], r[1]) for r in rows}
    for st in ("render_pose", "parsing_iou", "ssim", "masked_psnr", "lpips_vgg",
               "lpips_squeeze", "fid_inception"):
        assert (st, "ours") in got, st
    for st in ("parsing_iou", "ssim", "lpips_vgg", "lpips_squeeze", "fid_inception", "p2b",
               "b2f", "stream_weightless_chain"):
        assert (st, "baseline") in got, st
        assert (st, "ours") in got, st
    assert ("stream_pipeline", "ours") in got
    by = {(r[0], r[1]): dict(zip(header, r)) for r in rows}
    for (st, _), r in by.items():
        want = "3" if st.startswith("stream_") else "2"  # the stream runs --stream-frames
        assert r["frames"] == want and float(r["fps"]) > 0 and float(r["peak_rss_mb"]) > 0
    # the appearance: once per target (ours) against once per frame (baseline), warm-up incl.
    assert by[("b2f", "ours")]["notes"].startswith("encoder 1x, projection 1x for 2+1")
    assert by[("b2f", "baseline")]["notes"].startswith("encoder 3x, projection 3x for 2+1")
    # FLOP-counted stages report achieved throughput against the measured matmul roof
    for st in ("lpips_vgg", "fid_inception", "p2b", "b2f"):
        r = by[(st, "ours")]
        assert float(r["gflop_per_frame"]) > 0 and float(r["pct_of_matmul"]) > 0
        assert float(r["speedup_vs_baseline"]) > 0
    assert by[("render_pose", "ours")]["gflops"] == "-"
    written = out.read_text()
    assert lines[0] in written and all(ln in written for ln in lines)


def test_flop_counter_and_matmul_probe():
    bench = _load()
    lin = __import__("torch").nn.Linear(64, 32, bias=False)
    x = __import__("torch").zeros(4, 64)
    assert bench.count_flops(lin, x) == 2 * 4 * 64 * 32
    roof = bench.measure_matmul_gflops(128, min_seconds=0.05)
    assert roof > 0.01
    eff = bench.module_efficiency(lin, (x,), roof, calls=2)
    assert eff["gflop"] == 2 * 4 * 64 * 32 / 1e9
    assert eff["fraction_of_matmul"] == eff["gflops"] / roof > 0
