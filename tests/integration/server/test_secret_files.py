"""`serve`'s secrets from files (issue 31.2): the database URL with its password, and the
agent and metrics tokens, kept off `ps` and out of a supervisor config; one line naming
the file when a file cannot be used, and nothing started."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from tests.integration.server.test_admin_token_file import run
from tests.support.procs import free_port
from tests.support.server import BinManagerFactory

PASSWORD = "pw-kept-in-a-file-7d41"


def _with_password(url: str) -> str:
    """`url` with a password (the test cluster trusts loopback, so any is accepted)."""
    return url.replace("://postgres@", f"://postgres:{PASSWORD}@", 1)


def _releases_in(url: str) -> int:
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as conn:
        row = conn.execute("SELECT count(*) FROM releases").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["flag", "env"])
def test_serve_reads_the_database_url_from_a_file(
    tmp_path: Path, bin_manager_factory: BinManagerFactory, postgres_url: str, how: str
) -> None:
    url_file = tmp_path / "database-url"
    url_file.write_text(_with_password(postgres_url) + "\n")
    url_file.chmod(0o600)
    if how == "flag":
        manager = bin_manager_factory(extra_args=["--database-url-file", str(url_file)])
    else:
        manager = bin_manager_factory(extra_env={"BIN_MANAGER_DATABASE_URL_FILE": str(url_file)})
    artifact = tmp_path / "tool"
    artifact.write_bytes(b"tool v1")
    published = manager.cli("publish", str(artifact), "--name", "tool")
    assert published.returncode == 0, published.stderr

    assert _releases_in(postgres_url) == 1  # in PostgreSQL, not in a SQLite file
    assert not (manager.data_dir / "bin-manager.sqlite3").exists()
    assert PASSWORD not in " ".join(psutil.Process(manager.pid).cmdline())
    assert PASSWORD not in manager.service.log()


def test_the_metrics_token_comes_from_a_file(
    tmp_path: Path, bin_manager_factory: BinManagerFactory
) -> None:
    token = secrets.token_urlsafe(24)
    token_file = tmp_path / "metrics-token"
    token_file.write_text(token + "\n")
    manager = bin_manager_factory(extra_args=["--metrics-token-file", str(token_file)])
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{manager.url}/metrics", headers=headers).status_code == 200
    wrong = {"Authorization": f"Bearer {secrets.token_urlsafe(24)}"}
    assert httpx.get(f"{manager.url}/metrics", headers=wrong).status_code == 401


@pytest.mark.parametrize("problem", ["missing", "empty", "two lines", "not a url"])
@pytest.mark.parametrize("how", ["flag", "env"])
def test_an_unusable_database_url_file_is_one_line_and_nothing_starts(
    tmp_path: Path, problem: str, how: str
) -> None:
    path = tmp_path / "database-url"
    if problem == "empty":
        path.write_text("\n \n")
    elif problem == "two lines":
        path.write_text(f"sqlite:///{tmp_path}/a.db\nsqlite:///{tmp_path}/b.db\n")
    elif problem == "not a url":
        path.write_text(f"{PASSWORD}\n")
    admin = {"BIN_MANAGER_ADMIN_TOKEN": secrets.token_urlsafe(32)}
    argv = ["serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")]
    if how == "flag":
        done = run(*argv, "--database-url-file", str(path), env=admin)
        source = "--database-url-file"
    else:
        done = run(*argv, env=admin | {"BIN_MANAGER_DATABASE_URL_FILE": str(path)})
        source = "BIN_MANAGER_DATABASE_URL_FILE"
    file = f"the database URL file {path} ({source})"
    says = {
        "missing": f"cannot read {file}: No such file or directory",
        "empty": f"{file} is empty",
        "two lines": f"{file} has 2 lines; it holds the database URL alone",
        "not a url": f"{file} does not hold a URL "
        "(e.g. postgresql+psycopg://user:password@host/db)",
    }
    assert (done.returncode, done.stderr) == (2, f"bin-manager: error: {says[problem]}\n")
    assert PASSWORD not in done.stderr
    assert not (tmp_path / "data").exists()


def test_the_url_and_its_file_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "database-url"
    path.write_text(f"sqlite:///{tmp_path}/a.db\n")
    done = run(
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "data"),
        "--database-url",
        f"sqlite:///{tmp_path}/b.db",
        "--database-url-file",
        str(path),
        env={"BIN_MANAGER_ADMIN_TOKEN": secrets.token_urlsafe(32)},
    )
    assert (done.returncode, done.stderr) == (
        2,
        "bin-manager: error: --database-url and --database-url-file go alone: give one\n",
    )
    assert not (tmp_path / "data").exists()
