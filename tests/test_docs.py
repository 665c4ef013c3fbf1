"""Documentation pages made from code match the code (``python scripts/gen_docs.py``)."""

from __future__ import annotations

from gen_docs import ROOT, main, pages  # scripts/ is on the path (conftest)


def test_generated_pages_are_up_to_date():
    for path, text in pages().items():
        assert path.read_text() == text, (
            f"{path.relative_to(ROOT)} differs from the registry: run python scripts/gen_docs.py")


def test_weights_page_names_every_registry_entry_and_what_loads_it():
    from dance_reenact.models.io import weights

    page = (ROOT / "docs" / "weights.md").read_text()
    for name, spec in weights.REGISTRY.items():
        row = next((ln for ln in page.splitlines() if ln.startswith(f"| `{name}` |")), None)
        assert row is not None, f"weight {name} missing from docs/weights.md"
        assert spec.used_by and spec.used_by in row, name
        assert spec.license in row, name


def test_check_mode_reports_a_stale_page(tmp_path, monkeypatch, capsys):
    import gen_docs

    stale = tmp_path / "weights.md"
    stale.write_text("# Weights\n| `vgg19` | hand-edited |\n")
    monkeypatch.setattr(gen_docs, "WEIGHTS_PAGE", stale)
    assert main(["--check"]) == 1
    assert "weights.md" in capsys.readouterr().out
    assert main([]) == 0 and main(["--check"]) == 0
