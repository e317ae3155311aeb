"""The admin token from a file: `--admin-token-file` on every admin command and on `serve`,
BIN_MANAGER_ADMIN_TOKEN_FILE, their precedence, and one clear line when it goes wrong."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.procs import free_port
from tests.support.server import BIN_MANAGER_SCRIPT, BinManager, BinManagerFactory

REFUSED_401 = (
    "the bin-manager refused the admin token (401): set BIN_MANAGER_ADMIN_TOKEN, "
    "BIN_MANAGER_ADMIN_TOKEN_FILE or --admin-token-file to the server's admin token, or "
    "BIN_MANAGER_API_TOKEN, BIN_MANAGER_API_TOKEN_FILE or --token-file to an API token"
)
WRONG = "wrong-but-long-token-0123456789"


def run(
    *args: str, env: dict[str, str] | None = None, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`bin-manager ARGS` with only the BIN_MANAGER_* variables given in `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIN_MANAGER_")}
    if url is not None:
        clean["BIN_MANAGER_URL"] = url
    return subprocess.run(
        [str(BIN_MANAGER_SCRIPT), *args],
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def token_file(tmp_path: Path, token: str, name: str = "token") -> Path:
    path = tmp_path / name
    path.write_text(f"  {token}\n\n")  # the token alone; whitespace around it is stripped
    return path


def test_every_admin_command_takes_the_token_from_a_file(
    tmp_path: Path, bin_manager: BinManager
) -> None:
    flag = ["--admin-token-file", str(token_file(tmp_path, bin_manager.admin_token))]
    v1_file, v2_file = tmp_path / "v1", tmp_path / "v2"
    v1_file.write_bytes(b"tool v1")
    v2_file.write_bytes(b"tool v2")
    v1 = hashlib.sha256(b"tool v1").hexdigest()
    url = bin_manager.url

    commands = [
        ["publish", str(v1_file), "--name", "tool"],
        ["publish", str(v2_file), "--name", "tool"],
        ["pin", "tool", v1],
        ["pause", "tool"],
        ["resume", "tool"],
        ["list", "bins"],
        ["list", "releases", "tool"],
        ["list", "nodes"],
        ["pin", "tool", hashlib.sha256(b"tool v2").hexdigest()],
        ["delete-release", "tool", v1],
    ]
    for command in commands:
        done = run(*command, *flag, url=url)
        assert (done.returncode, done.stderr) == (0, ""), command
        assert bin_manager.admin_token not in done.stdout
    assert bin_manager.admin_get("/bins").json()["data"][0]["releases"] == 1
    kinds = [e["kind"] for e in bin_manager.admin_get("/events").json()["data"]]
    assert kinds == ["delete", "pin", "resume", "pause", "pin", "publish", "publish"]

    by_env = run(
        "list",
        "releases",
        "tool",
        "--json",
        url=url,
        env={"BIN_MANAGER_ADMIN_TOKEN_FILE": flag[1]},
    )
    assert by_env.returncode == 0, by_env.stderr
    assert [r["sha256"] for r in json.loads(by_env.stdout)] == [
        hashlib.sha256(b"tool v2").hexdigest()
    ]


def test_flag_wins_over_the_token_which_wins_over_the_token_file(
    tmp_path: Path, bin_manager: BinManager
) -> None:
    right = token_file(tmp_path, bin_manager.admin_token, "right")
    wrong = token_file(tmp_path, WRONG, "wrong")
    missing = tmp_path / "no-such-token"
    url = bin_manager.url
    cases = [
        # (flag file, BIN_MANAGER_ADMIN_TOKEN, BIN_MANAGER_ADMIN_TOKEN_FILE) → accepted?
        (right, WRONG, str(wrong), True),
        (wrong, bin_manager.admin_token, str(right), False),
        (None, bin_manager.admin_token, str(missing), True),  # the file is not even read
        (None, WRONG, str(right), False),
        (None, "", str(right), True),  # empty counts as unset
        (None, None, str(right), True),
    ]
    for flag_file, token, file_env, accepted in cases:
        env = {"BIN_MANAGER_ADMIN_TOKEN_FILE": file_env}
        if token is not None:
            env["BIN_MANAGER_ADMIN_TOKEN"] = token
        flag = ["--admin-token-file", str(flag_file)] if flag_file else []
        done = run("list", "bins", *flag, url=url, env=env)
        case = (flag_file, token == WRONG, file_env)
        if accepted:
            assert (done.returncode, done.stderr) == (0, ""), case
        else:
            assert done.returncode == 2, case
            assert done.stderr.splitlines() == [
                f"bin-manager: error: {REFUSED_401} (the server said: wrong bearer token)"
            ], case
        assert WRONG not in done.stdout + done.stderr
        assert bin_manager.admin_token not in done.stdout + done.stderr


def test_a_refused_or_missing_token_names_what_to_set(bin_manager: BinManager) -> None:
    for env in ({}, {"BIN_MANAGER_ADMIN_TOKEN": WRONG}):
        done = run("pause", "tool", url=bin_manager.url, env=env)
        assert done.returncode == 2
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(f"bin-manager: error: {REFUSED_401} (the server said: ")
        assert WRONG not in done.stderr


@pytest.mark.parametrize("problem", ["missing", "empty", "directory"])
@pytest.mark.parametrize("how", ["flag", "env"])
def test_an_unusable_token_file_is_one_line_naming_it_and_sends_nothing(
    tmp_path: Path, problem: str, how: str
) -> None:
    path = tmp_path / f"token-{problem}"
    if problem == "empty":
        path.write_text(" \n")
    elif problem == "directory":
        path.mkdir()
    says = {"missing": "No such file", "empty": "is empty", "directory": "Is a directory"}
    # Nothing listens at the URL: an attempt to send would say "cannot reach" (exit 75).
    url = f"http://127.0.0.1:{free_port()}"
    if how == "flag":
        done = run("list", "bins", "--admin-token-file", str(path), url=url)
        source = "--admin-token-file"
    else:
        done = run("list", "bins", url=url, env={"BIN_MANAGER_ADMIN_TOKEN_FILE": str(path)})
        source = "BIN_MANAGER_ADMIN_TOKEN_FILE"
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert str(path) in lines[0]
    assert source in lines[0]
    assert says[problem] in lines[0]


def test_serve_reads_the_token_file_named_in_the_environment(
    tmp_path: Path, bin_manager_factory: BinManagerFactory
) -> None:
    token = "served-from-env-file-0123456789"
    manager = bin_manager_factory(
        admin_token=token,
        extra_env={
            "BIN_MANAGER_ADMIN_TOKEN": "",
            "BIN_MANAGER_ADMIN_TOKEN_FILE": str(token_file(tmp_path, token)),
        },
    )
    assert manager.admin_get("/bins").status_code == 200
    with manager.client() as http:
        wrong = http.get(f"{manager.api}/admin/bins", headers={"Authorization": f"Bearer {WRONG}"})
    assert wrong.status_code == 401
    assert token not in manager.service.log()

    missing = tmp_path / "absent-token"
    refused = run(
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "data"),
        env={"BIN_MANAGER_ADMIN_TOKEN_FILE": str(missing)},
    )
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"bin-manager: error: cannot read the admin token file {missing} "
        "(BIN_MANAGER_ADMIN_TOKEN_FILE): No such file or directory"
    ]
    assert not (tmp_path / "data").exists()
