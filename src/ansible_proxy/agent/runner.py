"""Wire one tick together: log, one HTTP client, the API, then `run_tick`."""

from __future__ import annotations

import sys
import time

from ansible_proxy import __version__
from ansible_proxy.agent import enrolment, last_tick
from ansible_proxy.agent.adapters import nodeinfo
from ansible_proxy.agent.host import Host
from ansible_proxy.agent.last_tick import LastTick
from ansible_proxy.agent.manifest import load_manifest
from ansible_proxy.agent.selfupdate import agent_file
from ansible_proxy.agent.tick import TickResult, run_tick
from ansible_proxy.client.api import Api, make_client
from ansible_proxy.client.config import AgentConfig
from ansible_proxy.client.logs import Log, stderr_if_terminal
from ansible_proxy.errors import (
    EXIT_DEPLOY,
    EXIT_OK,
    EXIT_RETRY,
    AnsibleProxyError,
    DeployError,
    RetryableError,
    describe,
)
from ansible_proxy.signatures import require_keygen


def open_log(cfg: AgentConfig, log_format: str, verbose: bool) -> Log:
    """LOG_FILE, echoed on stderr on a terminal, or always with -v (ssh without -t, scripts)."""
    echo = sys.stderr if verbose else stderr_if_terminal()
    return Log(cfg.log_file, log_format, echo, "debug" if verbose else "info")


def run_once(
    cfg: AgentConfig,
    log_format: str,
    verbose: bool,
    crash_at: str = "",
    interval: float = last_tick.CRON_INTERVAL,
) -> int:
    """One tick, recorded for `status` however it ends (`interval`: the seconds until the
    next one is due); errors that end the whole tick are logged, then raised to cli.py."""
    started = time.time()
    code, failures = EXIT_DEPLOY, ["stopped before its end (a signal)"]
    try:
        result = _tick(cfg, log_format, verbose, crash_at)
        code, failures = result.code, result.failures
    except AnsibleProxyError as exc:
        code, failures = exc.exit_code, [str(exc)]
        raise
    finally:
        tick = LastTick(started, time.time(), code, last_tick.outcome(code, failures), interval)
        last_tick.record(cfg.store_dir, tick)
    return code


def _tick(cfg: AgentConfig, log_format: str, verbose: bool, crash_at: str) -> TickResult:
    log = open_log(cfg, log_format, verbose)
    urls = [cfg.api, cfg.download_base_url]
    notices: list[str] = []
    try:
        with make_client(urls, cfg.token, cfg.ca_bundle, cfg.insecure, cfg.http_timeout) as client:
            api = Api(client, cfg.api, cfg.node_name, nodeinfo.cpu_arch())
            host = Host(
                cfg,
                api,
                log,
                crash_at=crash_at,
                show_progress=sys.stderr.isatty(),
                agent_path=agent_file(),
                notices=notices,
            )
            result = run_tick(host)
    except AnsibleProxyError as exc:
        log("warning" if exc.exit_code == EXIT_RETRY else "error", str(exc))
        raise
    except Exception as exc:  # a fault we did not plan for: one line, never a traceback
        log("error", describe(exc))
        raise DeployError(describe(exc)) from exc
    finally:
        log.close()
        if log.echo is None:  # else they are on stderr already, as log lines
            for line in notices:
                print(f"ansible-proxy: warning: {line}", file=sys.stderr)
    if log.echo is None:  # else the log lines are on stderr already
        tell_failures(result.failures, result.code)
    return result


NOT_ENROLLED = (
    "this node is not enrolled yet: run `ansible-proxy run` once first (it enrols with "
    "ENROLMENT_TOKEN, or asks the bin-manager's admin to approve it)"
)


def self_test(cfg: AgentConfig) -> str:
    """What `ansible-proxy self-test` checks: config (loaded), manifest, API; one line.

    It writes nothing: a new agent on trial must not change the host it is tried on.
    """
    manifest = load_manifest(cfg.manifest_path)
    if cfg.trusted_keys is not None:
        require_keygen()  # as `run` at start: exit 2, no release tried
    urls = [cfg.api, cfg.download_base_url]
    log = Log(None, "text", None, "error")
    with make_client(urls, cfg.token, cfg.ca_bundle, cfg.insecure, cfg.http_timeout) as client:
        api = Api(client, cfg.api, cfg.node_name, nodeinfo.cpu_arch())
        enrolment.use_saved(Host(cfg, api, log))  # this node's own token, once enrolled
        try:
            api.node_known()  # reaches the API, with this node's credentials
        except RetryableError as exc:
            if api.node_token or "HTTP 401" not in str(exc):
                raise
            raise RetryableError(f"{exc}: {NOT_ENROLLED}") from None
    return (
        f"self-test ok: ansible-proxy {__version__} on Python {sys.version.split()[0]}, "
        f"{len(manifest.binaries)} managed binaries, API {cfg.api} answering"
    )


def tell_failures(failures: list[str], code: int) -> None:
    """One line per failed binary on stderr, for cron mail.

    A tick that only has to retry (exit 75: API down, lock held, ...) stays quiet: cron
    would mail every minute while a server restarts. It is in LOG_FILE all the same.
    """
    if code in (EXIT_OK, EXIT_RETRY):
        return
    for line in failures:
        print(f"ansible-proxy: {line}", file=sys.stderr)
