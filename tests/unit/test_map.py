"""tests/map.py, the table of which tests cover each source folder: complete and true."""

from __future__ import annotations

import pytest

from tests.conftest import is_slow
from tests.map import COVERS, OTHERS, ROOT, SRC, covering, row_of, source_folders


def test_every_source_folder_has_its_row() -> None:
    missing = [folder for folder in source_folders() if folder not in COVERS]
    assert missing == [], f"add a row to tests/map.py for {missing}"
    assert SRC in COVERS


def test_every_row_names_folders_and_files_that_exist() -> None:
    for folder, tests in COVERS.items():
        assert (ROOT / folder).is_dir(), folder
        assert tests, folder
        for test in tests:
            assert (ROOT / test).exists(), f"{folder}: {test} does not exist"


def test_every_test_folder_is_named_by_a_row() -> None:
    named = {test for tests in COVERS.values() for test in tests} | set(OTHERS)

    def covered(path: str) -> bool:
        return any(path == name or path.startswith(f"{name}/") for name in named)

    tests = ROOT / "tests"
    folders = [
        str(path.parent.relative_to(ROOT))
        for path in tests.rglob("test_*.py")
        if "__pycache__" not in path.parts
    ]
    top = [str(path.relative_to(ROOT)) for path in (tests / "unit").glob("test_*.py")]
    orphans = sorted({path for path in folders if path != "tests/unit" and not covered(path)})
    orphans += [path for path in top if not covered(path)]
    assert orphans == [], f"name these in a row of tests/map.py: {orphans}"


def test_a_file_takes_its_folders_row_or_the_nearest_above() -> None:
    assert row_of(f"{SRC}/agent/tick.py") == f"{SRC}/agent"
    assert row_of(f"{SRC}/server/hotpath") == f"{SRC}/server/hotpath"
    assert row_of(f"{SRC}/server/dashboard/templates") == f"{SRC}/server/dashboard"
    assert row_of(str(ROOT / SRC / "names.py")) == SRC
    assert covering([f"{SRC}/cluster/plan.py", f"{SRC}/cluster"]) == [
        "tests/unit/cluster",
        "tests/integration/cluster",
    ]


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("README.md", "not under src/ansible_proxy/"),
        (f"{SRC}/no_such_module.py", "no such file or folder"),
        ("/etc", "not in this repository"),
    ],
)
def test_a_path_outside_the_source_is_refused_naming_it(path: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as refused:
        row_of(path)
    assert str(refused.value).startswith(f"{path}: ")


def _paths(cell: str) -> list[str]:
    """The paths in backquotes in a table cell, without a folder's trailing slash."""
    return [part.rstrip("/") for part in cell.split("`")[1::2]]


def test_docs_testing_md_shows_the_same_table() -> None:
    text = (ROOT / "docs" / "testing.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `src/")]
    shown = {}
    for row in rows:
        source, quick, slow = (cell.strip() for cell in row.strip("|").split("|"))
        assert all(not path.startswith("tests/integration") for path in _paths(quick)), row
        assert all(path.startswith("tests/integration") for path in _paths(slow)), row
        (folder,) = _paths(source)
        shown[folder] = _paths(quick) + _paths(slow)
    assert shown == {folder: list(tests) for folder, tests in COVERS.items()}
    others = [_paths(line)[0] for line in text.splitlines() if line.startswith("- `tests/")]
    assert others == list(OTHERS)


def test_whatever_starts_real_processes_is_slow_and_the_rest_quick() -> None:
    assert is_slow("tests/integration/server/test_cli.py::test_publish", set())
    assert is_slow("tests/routes/test_agent_api.py::test_keepalive[postgres]", {"postgres"})
    assert not is_slow("tests/routes/test_agent_api.py::test_keepalive[sqlite]", set())
    assert not is_slow("tests/unit/agent/test_plan.py::test_decide", {"parametrize"})
