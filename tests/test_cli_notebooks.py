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
    assert len(REPO_NOTEBOOKS) == 7


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


@pytest.mark.parametrize("force", [False, True])
def test_never_writes_through_a_symlink(tmp_path, capsys, force):
    """A link where a notebook goes (to a file outside, or dangling) is refused, --force or not."""
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / "01-keys.ipynb").symlink_to(victim)
    (out / "02-signatures.ipynb").symlink_to(tmp_path / "nowhere.txt")
    args = ["notebooks", "--out", str(out)] + (["--force"] if force else [])
    assert main(args) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "symbolic link" in line and "unexpected" not in line
    assert victim.read_text() == "precious"
    assert not (tmp_path / "nowhere.txt").exists()
    assert sorted(p.name for p in out.iterdir()) == ["01-keys.ipynb", "02-signatures.ipynb"]


def test_unusable_out_directories_are_one_clear_line(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "01-keys.ipynb").mkdir()  # a directory where a notebook goes
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    for out in (a_file / "sub", tmp_path / "dir", tmp_path / "dangling", tmp_path / ("n" * 5000),
                tmp_path / "esc\x1b[2Jape" / "\x9b"):
        code = main(["notebooks", "--out", str(out)])
        err = capsys.readouterr()
        if code == 0:  # the escape-named directory is a legal name: written, shown escaped
            assert "\x1b" not in err.out and "\x9b" not in err.out
            continue
        assert code == 2, out
        line = _one_error_line(err.err)
        assert "unexpected" not in line and "\x1b" not in line and len(line) < 1000
