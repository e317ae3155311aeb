"""A team from the shell, against a real `bin-manager serve` (issue 28's "done when"): an
existing installation's admin token adds the first admin and an operator; a CI job holding
a publisher token for `web` publishes web with `bin-manager publish` and is refused
everything else, naming the right; people are re-roled and disabled, the token revoked;
`bin-manager audit` tells afterwards who did what; no password or token reaches the
server's log."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

from tests.support.server import BIN_MANAGER_SCRIPT, BinManager
from tests.support.team import log_in


def cli(manager: BinManager, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`bin-manager ARGS` with the server's URL and `env` as its only BIN_MANAGER_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIN_MANAGER_")}
    clean["BIN_MANAGER_URL"] = manager.url
    clean.update(env)
    return subprocess.run(
        [str(BIN_MANAGER_SCRIPT), *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def refused(done: subprocess.CompletedProcess[str], right: str) -> None:
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert "bin-manager refused (403): forbidden: token ci-web (" in done.stderr
    assert f"lacks the right '{right}'" in done.stderr


def test_two_people_and_a_ci_job_with_their_own_credentials(
    bin_manager: BinManager, tmp_path: Path
) -> None:
    admin = {"BIN_MANAGER_ADMIN_TOKEN": bin_manager.admin_token}
    old = bin_manager.publish("web", b"web before the team")
    # the installation's first person: no --role needed, an admin
    first = cli(bin_manager, "users", "add", "alice", **admin)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("alice: added as admin\none-time password (shown once): ")
    alice_password = first.stdout.splitlines()[1].rsplit(" ", 1)[1]
    second = cli(
        bin_manager, "users", "add", "bob", "--role", "operator", "--bins", "web*", **admin
    )
    assert second.stdout.startswith("bob: added as operator for web*\n"), second.stderr
    bob_password = second.stdout.splitlines()[1].rsplit(" ", 1)[1]
    made = cli(
        bin_manager, "tokens", "create", "ci-web", "--role", "publisher", "--bins", "web", **admin
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert re.fullmatch(r"bmt_[A-Za-z0-9_-]{43}", token)
    assert "token ci-web (" in made.stderr
    assert "publisher for web, expires " in made.stderr
    token_file = tmp_path / "ci-web.token"
    token_file.write_text(made.stdout)

    # the CI job: its own token, by the new name or the old one, as a file or not
    release = tmp_path / "web-v2"
    release.write_bytes(b"web v2 from CI")
    published = cli(
        bin_manager, "publish", str(release), "--name", "web", BIN_MANAGER_API_TOKEN=token
    )
    assert published.returncode == 0, published.stderr
    assert published.stdout.strip() == hashlib.sha256(b"web v2 from CI").hexdigest()
    as_ci = {"BIN_MANAGER_ADMIN_TOKEN": token}
    refused(cli(bin_manager, "publish", str(release), "--name", "api", **as_ci), "publish")
    refused(cli(bin_manager, "pin", "web", old, "--token-file", str(token_file)), "pin")
    refused(cli(bin_manager, "rollout", "promote", "web", **as_ci), "rollout")
    refused(cli(bin_manager, "nodes", "approve", "web-01", **as_ci), "nodes")
    refused(cli(bin_manager, "tokens", "create", "x", "--role", "admin", **as_ci), "tokens")
    whoami = cli(bin_manager, "whoami", **as_ci)
    assert whoami.stdout.startswith("token ci-web (")
    assert whoami.stdout.strip().endswith(": publisher for web; rights: read, publish")

    # the people: bob logs in, is made a viewer, then disabled; the token is revoked
    with bin_manager.client(base_url=bin_manager.url) as browser:
        assert log_in(browser, "bob", bob_password).status_code == 303
        assert log_in(browser, "bob", "bob's wrong guess at it").status_code == 401
    assert (
        cli(bin_manager, "users", "set-role", "bob", "viewer", **admin).stdout
        == "bob: now viewer\n"
    )
    assert (
        "every session of theirs has ended"
        in cli(bin_manager, "users", "disable", "bob", **admin).stdout
    )
    listed = cli(bin_manager, "users", "list", **admin).stdout.splitlines()
    assert listed[0].split() == ["NAME", "ROLE", "STATE", "LAST", "LOGIN", "CREATED", "BY"]
    assert listed[1].split()[:3] == ["alice", "admin", "new"]
    assert listed[2].split()[:3] == ["bob", "viewer", "disabled"]
    tokens = json.loads(cli(bin_manager, "tokens", "list", "--json", **admin).stdout)
    assert [(t["name"], t["role"], t["bins"], t["state"]) for t in tokens] == [
        ("ci-web", "publisher", ["web"], "active")
    ]
    assert tokens[0]["lastUsedAt"] is not None
    assert cli(bin_manager, "tokens", "revoke", "ci-web", **admin).returncode == 0
    gone = cli(bin_manager, "publish", str(release), "--name", "web", **as_ci)
    assert gone.returncode == 2
    assert "'ci-web' was revoked" in gone.stderr

    # afterwards: who did what
    trail = cli(bin_manager, "audit", **admin)
    assert trail.returncode == 0, trail.stderr
    lines = trail.stdout.splitlines()
    assert lines[0].split()[:4] == ["WHEN", "(UTC)", "WHO", "ACTION"]
    rows = json.loads(cli(bin_manager, "audit", "--json", **admin).stdout)
    seen = [(row["actor"], row["action"], row["outcome"]) for row in reversed(rows)]
    assert seen == [
        ("admin-token", "publish", "ok"),
        ("admin-token", "add-user", "ok"),
        ("admin-token", "add-user", "ok"),
        ("admin-token", "create-token", "ok"),
        ("ci-web", "publish", "ok"),
        ("ci-web", "publish", "refused"),
        ("ci-web", "pin", "refused"),
        ("ci-web", "rollout-promote", "refused"),
        ("ci-web", "approve-node", "refused"),
        ("ci-web", "create-token", "refused"),
        ("bob", "login", "ok"),
        ("bob", "login", "failed"),
        ("admin-token", "set-role", "ok"),
        ("admin-token", "disable-user", "ok"),
        ("admin-token", "revoke-token", "ok"),
    ]
    by_ci = json.loads(
        cli(
            bin_manager, "audit", "--json", "--actor", "ci-web", "--action", "publish", **admin
        ).stdout
    )
    assert [(row["binName"], row["outcome"]) for row in by_ci] == [
        ("api", "refused"),
        ("web", "ok"),
    ]
    assert by_ci[1]["fingerprint"] == tokens[0]["fingerprint"]
    assert by_ci[1]["sha256"] == hashlib.sha256(b"web v2 from CI").hexdigest()
    assert cli(bin_manager, "audit", "--limit", "2", **admin).stderr.startswith(
        "older entries: --before "
    )

    log = bin_manager.service.log()
    for secret in (token, alice_password, bob_password, "bob's wrong guess at it"):
        assert secret not in log
    assert "person 'bob' added as operator for web*" in log
