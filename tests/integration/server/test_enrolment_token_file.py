"""`serve`'s enrolment token from a file: `--enrolment-token-file` and
BIN_MANAGER_ENROLMENT_TOKEN_FILE, their precedence, and one clear line when it goes wrong
(the same rules as the admin token's file)."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from tests.integration.server.test_admin_token_file import run, token_file
from tests.support.answers import node_info
from tests.support.procs import free_port
from tests.support.server import BinManager, BinManagerFactory

FROM_FILE = "enrol-from-a-file-0123456789-abcdef"
FROM_ENV = "enrol-from-the-env-0123456789-abcdef"


def _enrols_with(manager: BinManager, token: str) -> int:
    """The status of a new node's POST /enrol with `token` as its bearer."""
    body = {**node_info(f"node-{secrets.token_hex(4)}"), "nodeToken": secrets.token_urlsafe(32)}
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{manager.api}/enrol", json=body, headers=headers).status_code


@pytest.mark.parametrize("how", ["flag", "env"])
def test_serve_takes_the_enrolment_token_from_a_file(
    tmp_path: Path, bin_manager_factory: BinManagerFactory, how: str
) -> None:
    path = token_file(tmp_path, FROM_FILE)
    env = {"BIN_MANAGER_NODE_AUTH": "required", "BIN_MANAGER_ENROLMENT_TOKEN": ""}
    args: list[str] = []
    if how == "flag":
        args = ["--enrolment-token-file", str(path)]
    else:
        env["BIN_MANAGER_ENROLMENT_TOKEN_FILE"] = str(path)
    manager = bin_manager_factory(extra_env=env, extra_args=args)
    assert _enrols_with(manager, FROM_FILE) == 201
    assert _enrols_with(manager, FROM_ENV) == 401
    assert FROM_FILE not in manager.service.log()


def test_the_flag_wins_over_the_token_which_wins_over_the_token_file(
    tmp_path: Path, bin_manager_factory: BinManagerFactory
) -> None:
    flag_file = token_file(tmp_path, FROM_FILE, "flag")
    env_file = token_file(tmp_path, "enrol-from-the-env-file-0123456789", "env")
    both = bin_manager_factory(
        extra_env={
            "BIN_MANAGER_ENROLMENT_TOKEN": FROM_ENV,
            "BIN_MANAGER_ENROLMENT_TOKEN_FILE": str(env_file),
        },
        extra_args=["--enrolment-token-file", str(flag_file)],
    )
    assert [_enrols_with(both, t) for t in (FROM_FILE, FROM_ENV)] == [201, 401]
    missing = tmp_path / "never-read"
    env_wins = bin_manager_factory(
        extra_env={
            "BIN_MANAGER_ENROLMENT_TOKEN": FROM_ENV,
            "BIN_MANAGER_ENROLMENT_TOKEN_FILE": str(missing),
        },
    )
    assert _enrols_with(env_wins, FROM_ENV) == 201  # the file is not even read


@pytest.mark.parametrize("problem", ["missing", "empty", "directory", "weak"])
@pytest.mark.parametrize("how", ["flag", "env"])
def test_an_unusable_enrolment_token_file_is_one_line_and_nothing_starts(
    tmp_path: Path, problem: str, how: str
) -> None:
    path = tmp_path / f"enrolment-{problem}"
    if problem == "empty":
        path.write_text(" \n")
    elif problem == "directory":
        path.mkdir()
    elif problem == "weak":
        path.write_text("abcdabcdabcdabcd\n")
    admin = {"BIN_MANAGER_ADMIN_TOKEN": secrets.token_urlsafe(32)}
    argv = ["serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")]
    if how == "flag":
        done = run(*argv, "--enrolment-token-file", str(path), env=admin)
        source = "--enrolment-token-file"
    else:
        done = run(*argv, env=admin | {"BIN_MANAGER_ENROLMENT_TOKEN_FILE": str(path)})
        source = "BIN_MANAGER_ENROLMENT_TOKEN_FILE"
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    if problem == "weak":
        assert lines[0].startswith(
            "bin-manager: error: refusing to start: the enrolment token "
            "(BIN_MANAGER_ENROLMENT_TOKEN) "
        )
        assert "abcdabcd" not in lines[0]
    else:
        file = f"the enrolment token file {path} ({source})"
        says = {
            "missing": f"cannot read {file}: No such file or directory",
            "empty": f"{file} is empty",
            "directory": f"cannot read {file}: Is a directory",
        }
        assert lines == [f"bin-manager: error: {says[problem]}"]
    assert not (tmp_path / "data").exists()
