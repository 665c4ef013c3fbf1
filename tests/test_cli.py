"""The `reenact` command line."""

from __future__ import annotations

from dance_reenact.cli import main
from dance_reenact.models.video_io import read_video


def test_demo_writes_a_playable_mp4_and_contact_sheet(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--seconds", "1"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "demo.mp4") in out
    frames = list(read_video(tmp_path / "demo.mp4"))
    assert len(frames) == 24 and frames[0].shape == (512, 320, 3)
    assert frames[0].max() > 100  # something was drawn
    assert (tmp_path / "demo_contact_sheet.png").stat().st_size > 1000


def test_weights_list_and_offline_fetch_error(capsys, monkeypatch):
    assert main(["weights", "list"]) == 0
    assert "openpose_body" in capsys.readouterr().out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["weights", "fetch", "lpips_alex"]) == 1
