"""``reenact evaluate`` on synthetic videos, label maps and masks written as real files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from metrics_fixtures import fid_inception_bytes, serve_fid_inception, serve_lpips_head
from PIL import Image

from dance_reenact.cli import main
from dance_reenact.models.core.schema import LABEL
from dance_reenact.models.io.video import read_video, write_mp4
from dance_reenact.models.metrics.evaluation import evaluate_reconstruction

N, H, W = 6, 64, 96


def _frame(t: int, shift: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    f = np.stack([xx * 2, yy * 3, (xx + yy)], -1).astype(np.uint8)  # a gradient background
    x0 = 10 + 8 * t + shift
    f[20:50, x0:x0 + 20] = (220, 40, 40)
    return f


def _labels(t: int, shift: int = 0) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    x0 = 10 + 8 * t + shift
    m[20:50, x0:x0 + 20] = LABEL["upper_clothes"]
    return m


def _write_pngs(folder, arrays, mode=None):
    folder.mkdir(parents=True)
    for i, a in enumerate(arrays):
        Image.fromarray(a, mode).save(folder / f"{i:04d}.png")
    return folder


@pytest.fixture
def data(tmp_path):
    video = tmp_path / "driver.mp4"
    write_mp4([_frame(t) for t in range(N)], video, fps=8)
    decoded = list(read_video(video))  # the ground truth is what a reader gets from the file
    d = {"video": video, "tmp": tmp_path,
         "same": _write_pngs(tmp_path / "pred_same", decoded),
         "shifted": _write_pngs(tmp_path / "pred_shift",
                                [np.roll(f, 3, axis=1) for f in decoded]),
         "gt_parsing": _write_pngs(tmp_path / "gt_parsing", [_labels(t) for t in range(N)]),
         "pred_parsing": _write_pngs(tmp_path / "pred_parsing",
                                     [_labels(t, shift=4) for t in range(N)])}
    (tmp_path / "gt_dp").mkdir()
    (tmp_path / "pred_dp").mkdir()
    for t in range(N):
        np.save(tmp_path / "gt_dp" / f"{t:04d}.npy", (_labels(t) > 0).astype(np.uint8) * 2)
        np.save(tmp_path / "pred_dp" / f"{t:04d}.npy", (_labels(t) > 0).astype(np.uint8) * 2)
    return d


def _read(out):
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    doc = json.loads((out / "metrics.json").read_text())
    return rows, doc


def test_identical_prediction_scores_ideal_and_writes_csv_json(data, capsys):
    out = data["tmp"] / "eval_same"
    rc = main(["evaluate", "--gt", str(data["video"]), "--pred", str(data["same"]),
               "--gt-parsing", str(data["gt_parsing"]), "--pred-parsing", str(data["gt_parsing"]),
               "--gt-densepose", str(data["tmp"] / "gt_dp"),
               "--pred-densepose", str(data["tmp"] / "pred_dp"), "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"csv: {out / 'metrics.csv'}" in printed and "6 frames scored" in printed
    rows, doc = _read(out)
    assert [r["frame"] for r in rows] == ["0", "1", "2", "3", "4", "5", "mean"]
    assert list(rows[0]) == ["frame", "ssim", "psnr", "ssbs", "ssis", "dpbs", "dpis"]
    for r in rows:
        assert float(r["ssim"]) == pytest.approx(1.0)
        assert float(r["psnr"]) == 100.0
        assert float(r["ssbs"]) == float(r["ssis"]) == float(r["dpbs"]) == 1.0
    assert len(doc["frames"]) == 6 and doc["mean"]["psnr"] == 100.0 and doc["fid"] is None


def test_shifted_prediction_scores_worse_by_the_expected_amount(data):
    out = data["tmp"] / "eval_shift"
    assert main(["evaluate", "--gt", str(data["video"]), "--pred", str(data["shifted"]),
                 "--gt-parsing", str(data["gt_parsing"]),
                 "--pred-parsing", str(data["pred_parsing"]), "--out", str(out)]) == 0
    rows, doc = _read(out)
    iou = (20 - 4) / (20 + 4)  # a 30x20 block shifted 4 px
    for r in rows[:-1]:
        assert float(r["ssbs"]) == pytest.approx(iou) and float(r["ssis"]) == pytest.approx(iou)
        assert float(r["ssim"]) < 0.9 and float(r["psnr"]) < 25
    assert doc["mean"]["ssbs"] == pytest.approx(iou)


def test_mask_limits_psnr_to_the_region(data):
    # prediction wrong only in the right half; the mask keeps the left half
    decoded = list(read_video(data["video"]))
    pred = []
    for f in decoded:
        g = f.copy()
        g[:, W // 2:] = 255 - g[:, W // 2:]
        pred.append(g)
    pred_dir = _write_pngs(data["tmp"] / "pred_half", pred)
    mask = np.zeros((H, W), np.uint8)
    mask[:, : W // 2] = 255
    mask_dir = _write_pngs(data["tmp"] / "masks", [mask] * N)
    out = data["tmp"] / "eval_mask"
    assert main(["evaluate", "--gt", str(data["video"]), "--pred", str(pred_dir),
                 "--mask", str(mask_dir), "--out", str(out)]) == 0
    rows, _ = _read(out)
    assert all(float(r["psnr"]) == 100.0 for r in rows)


def test_pipeline_hook_excludes_the_target_frame(data):
    out = data["tmp"] / "eval_oracle"
    assert main(["evaluate", "--gt", str(data["video"]), "--pipeline",
                 "metrics_fixtures:oracle_pipeline", "--target-frame", "2",
                 "--out", str(out)]) == 0
    rows, doc = _read(out)
    assert [r["frame"] for r in rows] == ["0", "1", "3", "4", "5", "mean"]
    assert all(float(r["psnr"]) == 100.0 for r in rows)
    assert doc["config"]["pipeline"] == "metrics_fixtures:oracle_pipeline"
    # the built-in baseline: the target held still scores worse on the moving figure
    out2 = data["tmp"] / "eval_still"
    assert main(["evaluate", "--gt", str(data["video"]), "--pipeline", "still",
                 "--out", str(out2)]) == 0
    rows2, _ = _read(out2)
    assert rows2[0]["frame"] == "1" and float(rows2[-1]["psnr"]) < 30


@pytest.mark.slow
def test_lpips_and_fid_columns_through_the_registry(data, hub, weights_dir, monkeypatch):
    import torchvision

    serve_lpips_head(hub, "squeeze")
    serve_fid_inception(hub, fid_inception_bytes(), monkeypatch)
    torch.manual_seed(0)
    torch.save(torchvision.models.squeezenet1_1().state_dict(), weights_dir / "sq.pth")
    out = data["tmp"] / "eval_deep"
    assert main(["evaluate", "--gt", str(data["video"]), "--pred", str(data["shifted"]),
                 "--lpips", "squeeze", "--lpips-backbone", "squeeze=sq.pth", "--fid",
                 "--device", "cpu", "--out", str(out)]) == 0
    rows, doc = _read(out)
    assert list(rows[0]) == ["frame", "ssim", "psnr", "lpips_squeeze", "fid"]
    assert all(float(r["lpips_squeeze"]) > 0 for r in rows)
    assert rows[0]["fid"] == "" and rows[-1]["frame"] == "mean"
    assert doc["fid"] > 0 and float(rows[-1]["fid"]) == pytest.approx(doc["fid"], rel=1e-5)


def test_bad_inputs_fail_with_a_message(data, caplog):
    short = _write_pngs(data["tmp"] / "short", list(read_video(data["video"]))[:4])
    assert main(["evaluate", "--gt", str(data["video"]), "--pred", str(short),
                 "--out", str(data["tmp"] / "x")]) == 1
    assert "ran out after 4 frames" in caplog.text
    assert main(["evaluate", "--gt", str(data["video"]), "--pipeline", "nope",
                 "--out", str(data["tmp"] / "x")]) == 1
    assert "unknown pipeline 'nope'" in caplog.text
    empty = _write_pngs(data["tmp"] / "empty_masks", [np.zeros((H, W), np.uint8)] * N)
    assert main(["evaluate", "--gt", str(data["video"]), "--pred", str(data["same"]),
                 "--mask", str(empty), "--out", str(data["tmp"] / "x")]) == 1
    assert "frame 0: the mask is empty" in caplog.text


class _ConstantInception(torch.nn.Module):
    """Stands in for the loaded Inception: the frame-count check is what is tested here."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.zeros(x.shape[0], 2048)


def test_one_frame_fid_is_refused():
    f = [_frame(0)]
    with pytest.raises(ValueError, match="FID needs at least 2 frames per set, got 1"):
        evaluate_reconstruction(f, f, fid_model=_ConstantInception())
    result = evaluate_reconstruction(f, f)  # without FID one frame is fine
    assert result.rows[0]["psnr"] == 100.0 and result.fid is None


def test_densepose_estimated_on_both_sides_when_no_maps_are_given(astronaut, tmp_path):
    """The paper's DPBS/DPIS: DensePose (weightless, MediaPipe keypoints) run on the generated
    and the real frames. Identical frames agree; a shifted person scores lower."""
    import cv2

    from dance_reenact.models.metrics.evaluation import make_densepose_estimator

    small = cv2.resize(astronaut, (192, 192), interpolation=cv2.INTER_AREA)
    est = make_densepose_estimator("weightless")
    index = est(small)
    assert index.shape == (192, 192) and (index > 0).mean() > 0.1  # a real, non-empty map
    gt = [small, np.roll(small, 4, axis=1), np.roll(small, 8, axis=1)]
    shifted = [np.roll(f, 16, axis=1) for f in gt]
    gt_dir = _write_pngs(tmp_path / "gt", gt)
    out = tmp_path / "eval"
    assert main(["evaluate", "--gt", str(gt_dir), "--pred", str(gt_dir),
                 "--densepose-backend", "weightless", "--out", str(out)]) == 0
    rows, _ = _read(out)
    assert list(rows[0]) == ["frame", "ssim", "psnr", "dpbs", "dpis"]
    assert all(float(r["dpbs"]) == 1.0 and float(r["dpis"]) == 1.0 for r in rows)
    pred_dir = _write_pngs(tmp_path / "shifted", shifted)
    assert main(["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir),
                 "--densepose-backend", "weightless", "--out", str(out)]) == 0
    rows, _ = _read(out)
    assert 0.3 < float(rows[-1]["dpbs"]) < 0.95
    assert float(rows[-1]["dpis"]) < float(rows[-1]["dpbs"])


def test_reconstruction_protocol_with_the_offline_pipeline(astronaut, tmp_path):
    """The paper's protocol on the real method: the target is frame 0 of a video of the
    astronaut sliding sideways; the offline pipeline re-renders the other frames, and the
    result beats holding the target frame still (the 'still' baseline) in PSNR."""
    import cv2

    small = cv2.resize(astronaut, (192, 192), interpolation=cv2.INTER_AREA)
    video = []
    for i in range(4):
        f = np.full((224, 224, 3), (30, 90, 160), np.uint8)
        f[32:224, 4 + 9 * i:196 + 9 * i] = small
        video.append(f)
    gt_dir = _write_pngs(tmp_path / "gt", video)
    scores = {}
    for name in ("still", "offline"):
        out = tmp_path / name
        assert main(["evaluate", "--gt", str(gt_dir), "--pipeline", name,
                     "--target-frame", "0", "--out", str(out)]) == 0
        rows, _ = _read(out)
        assert len(rows) == 4  # 3 rendered frames + the mean row
        scores[name] = float(rows[-1]["psnr"])
    assert scores["offline"] > scores["still"]


# ------------------------------------------------------------------ metrics that cannot be gamed


def _red_parsing(rgb):
    """A stand-in parser for the synthetic figure: its red pixels are upper clothes."""
    red = (rgb[..., 0] > 195) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)  # not the gradient
    return red.astype(np.uint8) * LABEL["upper_clothes"]


def _red_densepose(rgb):
    return (_red_parsing(rgb) > 0).astype(np.uint8) * 2


def _random_lpips():
    from dance_reenact.models.metrics import scores as M

    torch.manual_seed(0)
    net = M.LPIPS(backbone="squeezenet1_1")
    with torch.no_grad():
        for k, v in net.state_dict().items():
            if k.startswith("lin"):
                v.abs_()  # the heads weight squared differences: non-negative
    return net.eval()


def test_a_blank_prediction_scores_below_the_still_baseline_on_every_metric(data):
    """Blank frames (nobody shown) against the target frame held still, on the moving figure:
    the still baseline must win on SSIM, PSNR, LPIPS, FID, SSBS, SSIS, DPBS and DPIS, so no
    metric rewards showing nothing. Both-empty frames cannot rescue the blank: the ground
    truth always shows the figure."""
    from metrics_fixtures import fid_inception_state

    from dance_reenact.cli.evaluate import PIPELINES
    from dance_reenact.models.metrics import scores as M

    gt = list(read_video(data["video"]))
    fid = M.FIDInceptionV3()
    fid.load_state_dict({**fid.state_dict(), **fid_inception_state()})
    fid.eval()
    lp = {"squeeze": _random_lpips()}
    res = {}
    for name in ("still", "blank"):
        pred = list(PIPELINES[name](gt[0], iter(gt)))[1:]  # the target frame left out
        res[name] = evaluate_reconstruction(
            pred, gt[1:], parsing_estimator=_red_parsing, densepose_estimator=_red_densepose,
            lpips_models=lp, fid_model=fid)
    still, blank = res["still"].mean, res["blank"].mean
    for higher_is_better in ("ssim", "psnr", "ssbs", "ssis", "dpbs", "dpis"):
        assert blank[higher_is_better] < still[higher_is_better], higher_is_better
    assert blank["lpips_squeeze"] > still["lpips_squeeze"]
    assert res["blank"].fid > res["still"].fid
    assert blank["ssbs"] == blank["ssis"] == 0.0  # a person missed entirely scores 0
    assert res["blank"].both_empty == {"parsing": 0, "densepose": 0}


def test_frames_where_both_maps_are_empty_are_left_out_and_counted():
    """A frame where neither the prediction nor the ground truth shows a person has no IoU:
    it is not a free 1.0 in the mean; the report counts it."""
    gt = [_frame(1), _frame(2), np.full((H, W, 3), 30, np.uint8)]  # the last: nobody there
    pred = [_frame(1, shift=4), _frame(2, shift=4), np.full((H, W, 3), 30, np.uint8)]
    r = evaluate_reconstruction(pred, gt, parsing_estimator=_red_parsing,
                                densepose_estimator=_red_densepose)
    iou = (20 - 4) / (20 + 4)
    assert np.isnan(r.rows[2]["ssbs"]) and np.isnan(r.rows[2]["dpis"])
    assert r.mean["ssbs"] == pytest.approx(iou) and r.mean["dpbs"] == pytest.approx(iou)
    assert r.both_empty == {"parsing": 1, "densepose": 1}
    assert "both parsings empty in 1 of 3 frames" in r.table()


@pytest.mark.slow  # the whole pipeline + MediaPipe on every frame: ~20 s on 2 cores
def test_protocol_runs_the_whole_paper_protocol_in_one_command(astronaut, tmp_path, capsys):
    """``--protocol`` on a ground-truth video: the target is the first frame with a person
    (frame 0 here shows nobody, and the output says frame 1), the weightless pipeline and the
    still baseline are rendered from it and scored in one table with parsing and DensePose of
    both, by named backends."""
    import cv2

    small = cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA)
    frames = [np.full_like(small, 90)] + [np.roll(small, 3 * t, axis=1) for t in range(4)]
    video = tmp_path / "gt.mp4"
    write_mp4(frames, video, fps=8)
    out = tmp_path / "proto"
    assert main(["evaluate", "--gt", str(video), "--protocol", "--lpips", "--no-fid",
                 "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "target: frame 1 of" in printed and "the first frame with a person" in printed
    doc = json.loads((out / "protocol.json").read_text())
    assert doc["target_frame"] == 1 and doc["parsing_backend"] == "geometric"
    assert doc["densepose_backend"] == "weightless"
    assert list(doc["methods"]) == ["offline", "still"]
    for m in doc["methods"].values():
        assert m["frames"] == 4  # 5 frames, the target left out
        assert set(m["mean"]) >= {"ssim", "psnr", "ssbs", "ssis", "dpbs", "dpis"}
        # frame 0 (nobody in the ground truth) has a parsing only if the method invents one
        assert m["both_empty"]["parsing"] <= 1
    table = (out / "protocol.md").read_text()
    assert "| offline: weightless pipeline" in table and "| still: still baseline" in table
    assert (out / "metrics_offline.csv").exists() and (out / "metrics_still.csv").exists()


class _MeanSquareLPIPS(torch.nn.Module):
    """Stands in for a loaded LPIPS: the mean squared difference, per frame."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, a, b):
        return ((a - b) ** 2).mean((1, 2, 3)) * self.w


class _PooledInception(torch.nn.Module):
    """Stands in for the FID Inception: 2048 features from 8x8 average pools of the frame."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, (8, 8)).flatten(1)
        return torch.cat([pooled * (k + 1) for k in range(11)], 1)[:, :2048] * self.w


def _pinned_evaluation():
    """Four frames with every input evaluate_reconstruction takes: masks (one of them (H, W,
    3)), the predicted parsing given and the ground truth's estimated, DensePose estimated on
    both sides, an LPIPS and an Inception stand-in, frame numbers and a progress callback."""
    pred = [_frame(t, shift=2 * t) for t in range(4)]
    gt = [_frame(t) for t in range(4)]
    masks = [(_labels(t) > 0).astype(np.float32) for t in range(4)]
    masks[1] = np.repeat(masks[1][..., None], 3, -1)
    masks[2][:, :40] = 1.0
    done = []
    result = evaluate_reconstruction(
        pred, gt, pred_parsing=[_labels(t, shift=2 * t) for t in range(4)],
        parsing_estimator=_red_parsing, densepose_estimator=_red_densepose, masks=masks,
        lpips_models={"msq": _MeanSquareLPIPS()}, fid_model=_PooledInception(),
        frame_indices=[10, 11, 12, 13], progress=lambda i, n: done.append((i, n)))
    return result, done


# _pinned_evaluation() before evaluate_reconstruction was split into helpers (C901).
PINNED_ROWS = [
    {"frame": 10, "ssim": 1.0, "psnr": 100.0, "lpips_msq": 0.0, "ssbs": 1.0, "ssis": 1.0,
     "dpbs": 1.0, "dpis": 1.0},
    {"frame": 11, "ssim": 0.7245, "psnr": 17.0541, "lpips_msq": 0.0032, "ssbs": 0.8182,
     "ssis": 0.8182, "dpbs": 0.8182, "dpis": 0.8182},
    {"frame": 12, "ssim": 0.8309, "psnr": 21.3693, "lpips_msq": 0.0055, "ssbs": 0.6667,
     "ssis": 0.6667, "dpbs": 0.6667, "dpis": 0.6667},
    {"frame": 13, "ssim": 0.4886, "psnr": 13.7587, "lpips_msq": 0.0069, "ssbs": 0.5385,
     "ssis": 0.5385, "dpbs": 0.5385, "dpis": 0.5385},
]


def test_evaluate_reconstruction_output_is_pinned():
    """Characterisation: exact columns, rows, FID, config and progress calls with every
    optional input in use, so a change of what evaluate_reconstruction computes shows here."""
    result, done = _pinned_evaluation()
    assert result.columns == ["ssim", "psnr", "lpips_msq", "ssbs", "ssis", "dpbs", "dpis"]
    assert result.config == {"frames": 4, "lpips": ["msq"], "fid": True, "psnr_cap_db": 100.0,
                             "masked": True}
    assert done == [(1, 0), (2, 0), (3, 0), (4, 0)]
    assert result.fid == pytest.approx(69.5119242153637, rel=1e-6)
    assert [list(r) for r in result.rows] == [list(r) for r in PINNED_ROWS]
    for got, want in zip(result.rows, PINNED_ROWS):
        assert list(got.values()) == pytest.approx(list(want.values()), abs=6e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(pred=2, gt=3), "the prediction ran out after 2 frames"),
    (dict(pred=3, gt=2), "the ground truth ran out after 2 frames"),
    (dict(pred=0, gt=0), "no frames to evaluate"),
    (dict(small_pred=True), r"frame 0: prediction \(32, 48, 3\) and ground truth \(64, 96, 3\)"),
    (dict(masks=[np.ones((10, 10))]), r"frame 0: mask \(10, 10\) does not match the frame"),
    (dict(masks=[np.ones((H, W))]), "masks has only 1 frames but the prediction has more"),
    (dict(pred_parsing=[_labels(0)] * 3), "give both predicted and ground-truth parsing"),
    (dict(gt_densepose=[_labels(0)] * 3), "give both predicted and ground-truth DensePose"),
])
def test_evaluate_reconstruction_refuses_with_a_message(kwargs, message):
    kw = dict(kwargs)
    n_pred, n_gt = kw.pop("pred", 3), kw.pop("gt", 3)
    pred = [_frame(t) for t in range(n_pred)]
    if kw.pop("small_pred", False):
        pred = [f[::2, ::2] for f in pred]
    with pytest.raises(ValueError, match=message):
        evaluate_reconstruction(pred, [_frame(t) for t in range(n_gt)], **kw)
