"""One tick of `ansible-proxy run` (docs/agent.md): keepalive, then each binary on its own.

`run_tick` returns the exit code and one line per failed binary; a failure of one binary
never stops the others. The work on one binary is in `upgrade.py`; what the tick shares
with it (store, supervisor, manifest) is the `Host`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ansible_proxy.agent import enrolment, plan
from ansible_proxy.agent.adapters import nodeinfo
from ansible_proxy.agent.host import Host
from ansible_proxy.agent.manifest import SELF_NAME, EntryRemoved, Manifest
from ansible_proxy.client import causes
from ansible_proxy.client.api import (
    MAX_HOLDS,
    Batch,
    CredentialRefused,
    NotEnrolled,
    UnknownBin,
    one_line,
)
from ansible_proxy.errors import (
    EXIT_OK,
    EXIT_RETRY,
    AnsibleProxyError,
    ConfigError,
    RetryableError,
    describe,
    worst_exit,
)
from ansible_proxy.signatures import require_keygen

if TYPE_CHECKING:
    from types import ModuleType


@dataclass
class TickResult:
    """The exit code of the worst outcome, and one line per failed binary (for cron mail)."""

    code: int = EXIT_OK
    failures: list[str] = field(default_factory=list)


def run_tick(host: Host) -> TickResult:
    """The tick of docs/agent.md, steps 1-5."""
    cfg, log = host.cfg, host.log
    manifest = host.manifest()  # first: a bad manifest changes nothing
    for directory, key in ((cfg.lock_dir, "LOCK_DIR"), (cfg.store_dir, "STORE_DIR")):
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{key} {directory}: cannot create: {exc.strerror}") from None
    if cfg.trusted_keys is not None:
        require_keygen()  # a host that cannot check a signature: exit 2 before any release
    if cfg.insecure:
        log("warning", "INSECURE_SKIP_VERIFY=1: TLS certificates are NOT verified")
    info = nodeinfo.collect(cfg.node_name, cfg.node_labels)
    body = keepalive_body(info, manifest)
    try:
        enrolment.ensure_enrolled(host, info)  # pending: one line, exit 75, nothing else done
        try:  # before any write: an unreachable API changes nothing on disk
            keepalive(host, body)
        except NotEnrolled as exc:  # the server's database restored or lost: enrol again
            enrolment.enrol_again(host, info, str(exc))
            keepalive(host, body)
    except CredentialRefused as exc:  # revoked: say how this host may ask again
        raise CredentialRefused(enrolment.how_to_ask_again(cfg, str(exc))) from None
    if host.set_node_info(info):
        log("info", "nodeInfo updated in the manifest")
    batch = poll_all(host) if manifest.binaries else None
    result = TickResult()
    for entry in manifest.binaries:
        name = entry.binary_name
        try:
            process_binary(host, name, batch)
            continue
        except EntryRemoved as exc:  # the operator's edit: not a failure of ours
            log("warning", f"{exc} (removed during this tick): left as it is", name)
            continue
        except AnsibleProxyError as exc:
            code, message = exc.exit_code, str(exc)
        except Exception as exc:  # one binary's surprise must not stop the others
            code, message = AnsibleProxyError.exit_code, describe(exc)
        log("warning" if code == EXIT_RETRY else "error", message, name)
        result.failures.append(f"{name}: {message}")
        result.code = worst_exit(result.code, code)
    if host.api.not_enrolled:  # told after the keepalive (a report): the next tick enrols
        enrolment.forget_enrolment(host, host.api.not_enrolled)
    try:
        host.state.save()
    except OSError as exc:  # a cache: losing it costs a re-hash, never a wrong decision
        log("warning", f"state file not saved: {describe(exc)}")
    return result


def keepalive_body(info: dict[str, object], manifest: Manifest) -> dict[str, object]:
    """POST /keepalive's body: the node info, and `held` ({bin: reason}) while an operator
    holds a binary (`ansible-proxy hold`), so the bin-manager knows not to wait for it."""
    held = {
        entry.binary_name: one_line(entry.hold) or "held"  # as the server takes a reason
        for entry in manifest.binaries
        if entry.hold
    }
    if len(held) > MAX_HOLDS:  # the server refuses more (and the whole keepalive with them)
        held = {name: held[name] for name in sorted(held)[:MAX_HOLDS]}
    return {**info, "held": held} if held else dict(info)


def keepalive(host: Host, body: dict[str, object]) -> None:
    """GET /keepalive; POST it when the node is unknown or what it tells changed (its info,
    a hold or its release)."""
    known = host.api.node_known()
    if known and host.state.get("node", "info") == body:
        return
    host.api.register(body)
    host.state.set("node", "info", body)
    host.log("info", "registered with the bin-manager" if not known else "node info updated")


def poll_all(host: Host) -> dict[str, str] | None:
    """GET /bins once, with the last answer's ETag; None: poll each bin alone."""
    state = host.state
    saved_bins, etag = state.get("batch", "bins"), state.get("batch", "etag")
    saved_withdrawn = state.get("batch", "withdrawn")
    previous = None
    # A state file from before `withdrawn` was kept: ask afresh once, or a 304 would hide
    # a pin in force.
    if isinstance(saved_bins, dict) and isinstance(etag, str) and isinstance(saved_withdrawn, dict):
        previous = Batch(saved_bins, etag, saved_withdrawn)
    try:
        answer = host.api.latest_all(previous)
    except AnsibleProxyError as exc:
        host.log("debug", f"batch poll failed, polling each bin: {exc}")
        return None
    if answer is None:
        host.log("debug", "the bin-manager has no batch poll: polling each bin")
        return None
    state.set("batch", "bins", answer.bins)
    state.set("batch", "etag", answer.etag)
    state.set("batch", "withdrawn", answer.withdrawn)
    return answer.bins


def latest_for(host: Host, name: str, batch: dict[str, str] | None) -> str:
    """The sha256 `name` should be at: from this tick's batch answer, else GET /bins/{bin}."""
    if batch is None:
        return host.api.latest(name)
    sha = batch.get(name)
    if sha is None:
        raise UnknownBin(f"API GET /bins: not published: no {host.api.arch} release of {name}")
    return sha


def process_binary(host: Host, name: str, batch: dict[str, str] | None) -> None:
    """Recovery first, then the latest version for one binary.

    Decided from the manifest as it is now, not as it was when the tick began: an
    overlapping run may have upgraded this binary meanwhile.
    """
    entry = host.entry(name)
    latest: str | None = None
    unknown: AnsibleProxyError | None = None
    try:
        latest = latest_for(host, name, batch)
    except AnsibleProxyError as exc:  # recovery needs no answer from the API
        unknown = exc
    if latest is not None:
        host.state.set("latest", name, latest)
        # For the inspector and `status`: never roll back to these, leave a pinned one be.
        host.state.set("withdrawn", name, list(host.api.withdrawn.get(name, ())))
    if entry.hold:  # `ansible-proxy hold`: not even a crash recovery touches it
        host.log("debug", f"held ({entry.hold}): left as it is", name, entry.version)
        return
    if name == SELF_NAME and host.agent_path is None:
        if host.state.get("warned", name) != "not-one-file":
            host.log(
                "warning",
                "only the one-file agent updates itself (make dist); this agent was "
                "installed with pip: left as it is",
                name,
            )
            host.state.set("warned", name, "not-one-file")
        return
    file_sha = host.installed_sha(entry)
    recovery = plan.recover(entry, file_sha, latest)
    if recovery.kind != plan.Recovery.NONE:
        recovered = _upgrade().recover(host, entry, recovery, latest)
        if recovered is None:
            return
        entry = recovered
        file_sha = host.installed_sha(entry)
    if unknown is not None or latest is None:
        raise unknown or RetryableError(f"no latest version known for {name}")
    action = plan.decide(entry, latest)
    if action == plan.Action.NOTHING:
        host.log("debug", "up to date", name, latest)
        if host.state.get("unreported", name) == latest:  # POST /bins failed last time
            host.api.report_bin(name, latest)
            host.state.set("unreported", name, None)
            host.log("info", "reported the installed version", name, latest)
        return
    if action == plan.Action.SKIP_KNOWN_BAD:
        if host.state.get("warned", name) != latest:
            host.log(
                "warning", "latest is known bad (history err): not installing it", name, latest
            )
            refuse_known_bad(host, name, latest)
            host.state.set("warned", name, latest)
        return
    _upgrade().upgrade(host, entry, latest, file_sha)


def refuse_known_bad(host: Host, name: str, sha: str) -> None:
    """Tell the bin-manager, once, that this host will not install `sha`: it failed here
    before (history "err"). A staged rollout waiting for it then knows why."""
    reason = (
        f"known bad: it failed on this host before (history err); `ansible-proxy forget "
        f"{name} {sha[:12]}` lets it be tried again"
    )
    try:
        host.api.report_progress(name, sha, 0, "failed", reason, causes.KNOWN_BAD)
    except RetryableError as exc:  # informative: the line above is in the log
        host.log("warning", f"progress report failed: {exc}", name, sha)


def _upgrade() -> ModuleType:
    """The upgrade path, imported when a binary needs work.

    Start-up time: a no-op tick (every minute, on every host) never loads locks (psutil),
    the download or the switch (supervisor's XML-RPC).
    """
    from ansible_proxy.agent import upgrade  # start-up time: see above

    return upgrade
