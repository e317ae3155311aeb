"""One service's rollout: latest sha per host, download, unpack, playbook, health, rollback.

Hosts are grouped by (cpu_arch, latest sha); each group is locked (LOCK_DIR/
`<service>.<arch>-<sha>.lock`), its package fetched once through the cache, unpacked
safely and deployed in batches of `serial`. A host whose playbook or health check fails
gets the previous release's rollback.yml (or deploy.yml) — that host only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible_proxy.client import causes, download, locks
from ansible_proxy.client.api import Api, UnknownBin
from ansible_proxy.client.causes import cause_of
from ansible_proxy.client.files import fsync_dir
from ansible_proxy.client.history import OK
from ansible_proxy.client.logs import Log
from ansible_proxy.client.transport import Client
from ansible_proxy.client.verified import check_install, remember
from ansible_proxy.cluster.health import healthy
from ansible_proxy.cluster.inventory import Node
from ansible_proxy.cluster.manifests import ServiceSpec
from ansible_proxy.cluster.packages import extract_release
from ansible_proxy.cluster.plan import batches, group_hosts
from ansible_proxy.cluster.playbooks import PlaybookResult, run_playbook
from ansible_proxy.cluster.settings import ClusterSettings
from ansible_proxy.cluster.state import ClusterState, save
from ansible_proxy.errors import (
    EXIT_DEPLOY,
    EXIT_OK,
    EXIT_RETRY,
    AnsibleProxyError,
    DeployError,
    RetryableError,
    worst_exit,
)
from ansible_proxy.signatures import SignatureRefused, Statement


@dataclass
class Rollout:
    """The collaborators of one service's rollout."""

    settings: ClusterSettings
    spec: ServiceSpec
    client: Client
    apis: dict[str, Api]
    state: ClusterState
    log: Log
    clock: Callable[[], float] = time.time

    def report(
        self,
        node: Node,
        sha: str,
        started: float,
        status: str,
        reason: str = "",
        cause: str = "",
    ) -> None:
        """Progress on behalf of `node` (a `failed` one with its reason and cause,
        client/causes.py); a reporting failure is logged, never fatal."""
        try:
            api = self.apis[node.name]
            seconds = int(self.clock() - started)
            api.report_progress(self.spec.package, sha, seconds, status, reason, cause)
            if status == "success":
                api.report_bin(self.spec.package, sha)
        except RetryableError as exc:
            self.log("warning", f"report for {node.name}: {exc}", self.spec.name, sha)

    def save(self) -> None:
        save(self.settings.state_path, self.state)


def deploy_service(rollout: Rollout, members: Sequence[Node]) -> int:
    """Bring every host of the service to its latest sha; the exit code."""
    spec, log = rollout.spec, rollout.log
    latest: dict[str, str] = {}
    for node in members:
        try:
            latest[node.name] = rollout.apis[node.name].latest(spec.package)
        except UnknownBin as exc:
            log("info", str(exc), spec.name)
            return EXIT_OK
    plan = group_hosts(spec.name, members, latest, rollout.state)
    for node, sha in plan.known_bad:
        log("debug", f"{node.name}: known bad, skipped", spec.name, sha)
    groups = plan.groups
    worst = EXIT_OK
    for (arch, sha), group in sorted(groups.items()):
        lock = locks.acquire(
            rollout.settings.lock_dir, f"{spec.name}.{arch}", sha, rollout.settings.lock_timeout
        )
        if lock is None:
            log("info", f"another run is deploying {arch}", spec.name, sha)
            continue
        try:
            worst = worst_exit(worst, _deploy_group(rollout, arch, sha, group, lock.created))
        finally:
            lock.release()
    return worst


def _deploy_group(rollout: Rollout, arch: str, sha: str, group: list[Node], started: float) -> int:
    spec, state, log = rollout.spec, rollout.state, rollout.log
    for node in group:
        rollout.report(node, sha, started, "in_progress")
    try:
        statement = _trusted(rollout, group, sha)
    except SignatureRefused as exc:  # nothing downloaded nor unpacked; asked again next run
        log("error", f"package refused: {exc} (TRUSTED_KEYS); nothing unpacked", spec.name, sha)
        for node in group:
            rollout.report(node, sha, started, "failed", f"signature: {exc}", cause_of(exc))
        return EXIT_DEPLOY
    try:
        archive = fetch_package(rollout, sha, arch, statement.size if statement else None)
    except BaseException as exc:  # no `in_progress` stays open; the run goes on as before
        for node in group:
            rollout.report(node, sha, started, "failed", f"download: {exc}", cause_of(exc))
        raise
    if statement is not None:
        remember(archive.parent, sha, statement)
    try:
        release = extract_release(
            archive, rollout.settings.work_dir / "releases", spec.name, sha, rollout.settings.limits
        )
        if not (release / spec.deploy).is_file():
            raise DeployError(f"the package has no {spec.deploy} (see the manifests' playbooks)")
    except DeployError as exc:
        # The content is what was published (sha256 checked): it stays bad, never retried;
        # unless this host could not unpack it (its disk), which says nothing of the package.
        cause = cause_of(exc)
        log("error", f"package refused: {exc}", spec.name, sha)
        for node in group:
            if cause == causes.RELEASE:
                state.fail(spec.name, node.name, sha)
            rollout.report(node, sha, started, "failed", f"package: {exc}", cause)
        rollout.save()
        return EXIT_DEPLOY
    code = EXIT_OK
    rounds = batches(group, spec.serial)
    for number, batch in enumerate(rounds, start=1):
        for node in batch:
            state.begin(spec.name, node.name, sha)
        rollout.save()
        result = _play(rollout, release / spec.deploy, release, sha, arch, batch, "deploy")
        bad: dict[str, str] = dict(result.failed)
        deployed = [n for n in batch if n.name in result.ok]
        with ThreadPoolExecutor(max_workers=max(1, min(32, len(deployed)))) as pool:
            verdicts = pool.map(lambda n: healthy(spec.health, n.address), deployed)
            for node, ok in zip(deployed, list(verdicts), strict=True):
                if not ok:
                    bad[node.name] = "health check failed after deploy"
        for node in batch:
            if node.name in result.unreachable:
                why = result.unreachable[node.name]
                log("warning", f"{node.name}: unreachable (next tick): {why}", spec.name, sha)
                reason = f"unreachable: {why}"
                rollout.report(node, sha, started, "failed", reason, causes.HOST)
                code = EXIT_RETRY
            elif node.name in bad:
                log("error", f"{node.name}: {bad[node.name]}", spec.name, sha)
            else:
                state.succeed(spec.name, node.name, sha)
                rollout.report(node, sha, started, "success")
                log("info", f"{node.name}: deployed", spec.name, sha)
        rollout.save()
        if bad:
            _roll_back(rollout, arch, sha, [n for n in batch if n.name in bad], started, bad)
            if number < len(rounds):
                log("warning", f"stopped after batch {number}: later hosts kept", spec.name, sha)
            return EXIT_DEPLOY
    return code


def _roll_back(
    rollout: Rollout,
    arch: str,
    sha: str,
    nodes: list[Node],
    started: float,
    why: dict[str, str],
) -> None:
    """The previous release's playbook on `nodes` only; `sha` marked "err" for them and
    reported failed with `why` (host name → the playbook's or the health check's reason)."""
    spec, state, log = rollout.spec, rollout.state, rollout.log
    by_previous: dict[str, list[Node]] = {}
    for node in nodes:
        by_previous.setdefault(state.version(spec.name, node.name), []).append(node)
    for previous, hosts in by_previous.items():
        release = _previous_release(rollout, previous, arch)
        if release is None:
            log("error", f"no previous release to roll back {len(hosts)} host(s) to", spec.name)
        else:
            playbook = release / (spec.rollback or spec.deploy)
            if not playbook.is_file():
                playbook = release / spec.deploy
            try:
                result = _play(rollout, playbook, release, previous, arch, hosts, "rollback")
            except AnsibleProxyError as exc:
                log("error", f"rollback could not run: {exc}", spec.name, previous)
            else:
                for host, reason in {**result.failed, **result.unreachable}.items():
                    log("error", f"{host}: rollback failed too: {reason}", spec.name, previous)
                for host in sorted(result.ok):
                    log("info", f"{host}: rolled back to {previous[:12]}", spec.name, sha)
        for node in hosts:
            state.fail(spec.name, node.name, sha)
            reason = f"playbook: {why.get(node.name, 'failed')}"
            rollout.report(node, sha, started, "failed", reason, causes.PLAYBOOK_OR_HEALTH)
    rollout.save()


def _previous_release(rollout: Rollout, previous: str, arch: str) -> Path | None:
    """The unpacked release `previous`, fetched and unpacked again if it was pruned."""
    if not previous:
        return None
    settings = rollout.settings
    try:
        archive = fetch_package(rollout, previous, arch)
        return extract_release(
            archive, settings.work_dir / "releases", rollout.spec.name, previous, settings.limits
        )
    except AnsibleProxyError as exc:
        rollout.log("error", f"previous release unavailable: {exc}", rollout.spec.name, previous)
        return None


def _play(
    rollout: Rollout,
    playbook: Path,
    release: Path,
    sha: str,
    arch: str,
    nodes: Sequence[Node],
    kind: str,
) -> PlaybookResult:
    spec = rollout.spec
    extravars: dict[str, Any] = {
        "ansible_proxy_service": spec.name,
        "ansible_proxy_package": spec.package,
        "ansible_proxy_release_dir": str(release),
        "ansible_proxy_sha256": sha,
        "ansible_proxy_arch": arch,
        "ansible_proxy_download_url": download.release_urls(
            rollout.settings.download_base_url, rollout.settings.api, spec.package, sha, arch
        )[0],
    }
    ident = f"{time.strftime('%Y%m%dT%H%M%S')}-{kind}-{arch}-{sha[:12]}-{os.getpid()}"
    private = rollout.settings.work_dir / "runs" / spec.name / ident
    result = run_playbook(
        playbook,
        rollout.settings.inventory,
        [n.name for n in nodes],
        extravars,
        private,
    )
    rollout.log("info", f"{kind} {arch} rc={result.rc}: artifacts {private}", spec.name, sha)
    return result


def _trusted(rollout: Rollout, group: list[Node], sha: str) -> Statement | None:
    """With TRUSTED_KEYS: the package's trusted statement, asked as the group's first node
    (of the group's arch) and checked as an agent checks a release (client/verified.py);
    None without TRUSTED_KEYS, or for the one unsigned step back an agent allows too."""
    trusted = rollout.settings.trusted_keys
    if trusted is None:
        return None
    spec = rollout.spec
    folder = rollout.settings.work_dir / "packages" / spec.package
    own = all(_is_own_revert(rollout.state, spec.name, node.name, sha) for node in group)
    api = rollout.apis[group[0].name]
    statement = check_install(api, folder, spec.package, sha, trusted, rollout.clock(), own)
    if statement is None:
        rollout.log(
            "info", "a move back to the release verified here before: allowed", spec.name, sha
        )
    return statement


def _is_own_revert(state: ClusterState, service: str, host: str, sha: str) -> bool:
    """`sha` is the release `host` ran before the one it runs, and it deployed well there."""
    version = state.version(service, host)
    return (
        bool(version)
        and state.rollback_target(service, host, version) == sha
        and state.result(service, host, sha) == OK
    )


def fetch_package(rollout: Rollout, sha: str, arch: str, size: int | None = None) -> Path:
    """The package `sha` in `packages/<package>/<sha>.tar.gz`, downloaded once, verified;
    `size` (a signed statement's) caps the download below MAX_DOWNLOAD_BYTES."""
    settings, package = rollout.settings, rollout.spec.package
    folder = settings.work_dir / "packages" / package
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{sha}.tar.gz"
    if target.is_file():
        return target
    part = folder / f".{sha}.part"
    urls = download.release_urls(settings.download_base_url, settings.api, package, sha, arch)
    try:
        download.fetch_release(
            rollout.client,
            urls,
            part,
            sha,
            settings.max_download_bytes,
            lambda _done, _total: None,
            tell=lambda why: rollout.log("warning", why, rollout.spec.name, sha),
            signed_size=size,
        )
    except download.NotFound:
        raise RetryableError(f"package {package} {sha[:12]} not found for {arch}") from None
    os.replace(part, target)
    fsync_dir(folder)
    return target
