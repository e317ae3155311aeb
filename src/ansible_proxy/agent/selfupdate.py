"""The agent keeping itself at its published version (docs/agent.md, Self-update).

A manifest entry named `ansible-proxy` is the agent itself: the one-file agent of
`make dist`, published like any release (`bin-manager publish ansible-proxy-….pyz --name
ansible-proxy --arch …`). It goes through the same tick as a binary — lock, download and
sha256 check into the store, history, upgrade path, progress and reports, crash recovery —
with one difference in the switch: instead of a supervisor restart and a watch window,
the new file must pass a self-test *before* it replaces the running one. The self-test
runs `python3 NEW self-test`: the new agent starts, reads this host's config and
manifest, and reaches the API with this node's credentials. A new agent that fails it
never replaces anything: it is quarantined (history "err") and reported `failed`, like a
binary that does not start. A self-test that does not finish — exit 75 (the API did not
answer it) or no answer within SELF_TEST_SECONDS — is no verdict on the new agent: nothing
is replaced nor quarantined, `failed` is reported as the host's, and the next tick tries
again.

The replace is a rename of a complete, fsynced copy over the running file, so at every
instant — a kill -9 included — the path holds the old agent or the new one, whole; the
old one is kept in STORE_DIR first. A crash between the replace and the manifest record
is converged by the next tick's recovery, which ever runs only a self-tested file.

Only the one-file agent updates itself: an agent run from a virtualenv (pip) leaves the
entry alone, with one warning, since replacing one file there would not replace its
dependencies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from ansible_proxy.agent.host import Host
from ansible_proxy.agent.manifest import SELF_NAME, ManagedBinary
from ansible_proxy.client.files import replace_with_copy
from ansible_proxy.errors import EXIT_RETRY, RetryableError

SELF_TEST_SECONDS = 60.0


class SelfTestUnfinished(RetryableError):
    """The new agent's self-test did not finish (exit 75, no answer in time, could not
    start): nothing replaced nor quarantined, tried again next tick."""


def is_self(name: str) -> bool:
    """True for the manifest entry that is the agent itself."""
    return name == SELF_NAME


def agent_file(argv0: str | None = None) -> Path | None:
    """The running one-file agent (a zipapp), or None when run from a virtualenv."""
    path = Path(argv0 if argv0 is not None else sys.argv[0])
    try:
        path = path.resolve(strict=True)
    except OSError:
        return None
    return path if path.is_file() and zipfile.is_zipfile(path) else None


def self_test(candidate: Path, timeout: float = SELF_TEST_SECONDS) -> str:
    """Run `candidate self-test` with this agent's Python and environment; "" when it passed,
    else why it failed; SelfTestUnfinished when it came to no verdict.

    The environment carries the config file's path (cli.py puts --config there) and every
    key given by the environment; SHIV_ROOT keeps each version's unpacked copy apart.
    """
    try:
        done = subprocess.run(
            [sys.executable, str(candidate), "self-test"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ),
        )
    except subprocess.TimeoutExpired:
        raise SelfTestUnfinished(
            f"the new agent's self-test gave no answer within {timeout:g} s: nothing "
            "replaced, tried again next tick"
        ) from None
    except OSError as exc:
        raise SelfTestUnfinished(
            f"the new agent's self-test could not start: {exc.strerror or exc}"
        ) from None
    if done.returncode == 0:
        return ""
    lines = (done.stderr or done.stdout).strip().splitlines()
    said = f"exit {done.returncode}: {lines[-1][:300] if lines else 'no output'}"
    if done.returncode == EXIT_RETRY:  # the API did not answer it: no verdict on the agent
        raise SelfTestUnfinished(
            f"the new agent's self-test did not finish ({said}): nothing replaced, tried "
            "again next tick"
        )
    return said


def switch_self(host: Host, entry: ManagedBinary, target: str) -> str:
    """Self-test the stored `target`, then put it in place of the running agent.

    Returns "" on success, else why the new agent was refused (nothing replaced).
    """
    path = host.agent_path
    if path is None:  # checked by the tick already; a recovery may still get here
        return "this agent does not run as the one-file agent: nothing replaced"
    stored = host.store.path(entry.binary_name, target)
    reason = self_test(stored)
    if reason:
        return f"the new agent failed its self-test ({reason}): nothing replaced"
    host.crash("after-self-test")
    replace_with_copy(stored, path, default_mode=0o755, expected_sha=target)
    host.crash("after-replace")
    host.log("info", f"agent replaced: {path}", entry.binary_name, target)
    return ""
