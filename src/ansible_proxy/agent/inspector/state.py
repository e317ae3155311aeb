"""What the inspector remembers between runs, in its state file beside the store
(STORE_DIR/../inspector-state.json, written atomically): each binary's streak of
unhealthy runs, the rollbacks done per service, what a person was already told, and the
rollback reports the API has not taken yet (report.py queues and sends those).
"""

from __future__ import annotations

from pathlib import Path

from ansible_proxy.agent.adapters.store import State
from ansible_proxy.agent.manifest import ManagedBinary
from ansible_proxy.client.config import AgentConfig

STATE_NAME = "inspector-state.json"

# Actions a person should hear of: a rollback (an event, every time), and the verdicts that
# leave an unhealthy service to a person, once per (binary, version, action): cron mails
# the news, not the same line every minute while nobody has acted yet.
TOLD_ACTIONS = frozenset(
    {
        "rolled-back",
        "rollback-impossible",
        "left-for-a-person",
        "target-known-bad",
        "target-withdrawn",
        "pinned",
        "no-rollback-path",
        "not-supervised",
    }
)


def state_path(cfg: AgentConfig) -> Path:
    """Beside the store: /var/lib/ansible-proxy/inspector-state.json by default."""
    return cfg.store_dir.parent / STATE_NAME


def failures_so_far(state: State, entry: ManagedBinary) -> int:
    """The installed version's streak of unhealthy runs before this one (a new version
    starts a new count)."""
    failures = state.get("failures", entry.binary_name)
    if state.get("counted", entry.binary_name) != entry.version:
        return 0
    return failures if isinstance(failures, int) else 0


def count_failures(state: State, binary: str, version: str, failures: int) -> None:
    """Remember `version`'s streak (0 ends it)."""
    state.set("failures", binary, failures)
    state.set("counted", binary, version)


def count_rollback(state: State, service: str) -> None:
    """One more rollback of `service` by the inspector (the textfile's counter)."""
    done = state.get("rollbacks", service)
    state.set("rollbacks", service, (done if isinstance(done, int) else 0) + 1)


def rollbacks(state: State, service: str) -> int:
    done = state.get("rollbacks", service)
    return done if isinstance(done, int) else 0


def is_news(state: State, binary: str, version: str, action: str) -> bool:
    """Should a person hear of this action now? Every rollback; any other action in
    TOLD_ACTIONS once per (binary, version, action). Remembers that they were told."""
    if action not in TOLD_ACTIONS:
        return False
    key = f"{version}:{action}"
    if action != "rolled-back" and state.get("told", binary) == key:
        return False
    state.set("told", binary, key)
    return True
