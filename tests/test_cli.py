"""The `reenact` command line."""

from __future__ import annotations

from dance_reenact.cli import main


def test_weights_list_and_offline_fetch_error(capsys, monkeypatch):
    assert main(["weights", "list"]) == 0
    assert "openpose_body" in capsys.readouterr().out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["weights", "fetch", "lpips_alex"]) == 1
