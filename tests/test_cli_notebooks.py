"""``snapbook notebooks --out DIR``: the workbook for pip users; refuses to overwrite without --force."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapbook.cli import main
from snapbook.errors import OutputExistsError, SnapbookError
from snapbook.workbook import copy_notebooks, notebook_files

ROOT = Path(__file__).resolve().parents[1]
REPO_NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("snapbook: error: "), err
    return lines[0]


def test_the_workbook_is_every_numbered_notebook_in_order():
    assert [f.name for f in notebook_files()] == [p.name for p in REPO_NOTEBOOKS]
    assert len(REPO_NOTEBOOKS) == 6


def test_writes_the_notebooks_into_a_new_directory(tmp_path, capsys):
    out = tmp_path / "my" / "workbook"
    assert main(["notebooks", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for src in REPO_NOTEBOOKS:
        assert (out / src.name).read_bytes() == src.read_bytes()
        assert f"wrote {out / src.name}" in printed
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in REPO_NOTEBOOKS]  # no test plumbing
    assert f"jupyter lab {out}" in printed


def test_refuses_to_overwrite_without_force_and_touches_nothing(tmp_path, capsys):
    edited = tmp_path / "03-token.ipynb"
    edited.write_text("my edits")
    assert main(["notebooks", "--out", str(tmp_path)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "03-token.ipynb" in line and "--force" in line
    assert edited.read_text() == "my edits"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["03-token.ipynb"], "a refusal writes nothing"

    assert main(["notebooks", "--out", str(tmp_path), "--force"]) == 0
    assert edited.read_bytes() == (ROOT / "notebooks" / "03-token.ipynb").read_bytes()


def test_a_file_as_out_is_a_clear_error(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["notebooks", "--out", str(target)]) == 2
    assert "is a file, not a directory" in _one_error_line(capsys.readouterr().err)


def test_library_errors_are_typed_with_a_hint(tmp_path):
    copy_notebooks(tmp_path)
    with pytest.raises(OutputExistsError) as info:
        copy_notebooks(tmp_path)
    assert isinstance(info.value, SnapbookError) and "--force" in info.value.hint
