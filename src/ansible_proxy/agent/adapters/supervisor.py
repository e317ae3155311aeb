"""supervisord through its XML-RPC interface (local unix socket, remote HTTP or HTTPS).

Uses the supervisor package's own transport; translates faults and socket errors
into our errors. `supervisorctl` exit codes are too coarse to trust, so nothing here
shells out. supervisord has no TLS of its own: an https:// URL is a TLS proxy in front
of its inet_http_server, verified against CA_BUNDLE (else the system's CAs).
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from supervisor.xmlrpc import Faults

from ansible_proxy.client.deadline import DeadlineExceeded, deadline
from ansible_proxy.errors import ConfigError, DeployError, HostFault, RetryableError

RUNNING = "RUNNING"
_STARTING = ("STARTING",)
_STOPPING = "STOPPING"
_DEFAULT_STOPWAITSECS = 10.0


class SupervisorUnavailable(RetryableError):
    """supervisord cannot be reached: nothing was changed, try next tick."""


class NoSuchProgram(HostFault):
    """supervisord has no program of that name (its BAD_NAME fault): this host's setup."""


class SupervisorHung(SupervisorUnavailable):
    """supervisord took the connection but did not answer within SUPERVISOR_TIMEOUT."""


@dataclass(frozen=True)
class ProcessInfo:
    name: str
    state: str
    pid: int
    exitstatus: int
    spawnerr: str


class _HttpsTransport(xmlrpc.client.SafeTransport):
    """XML-RPC over verified TLS with basic auth (the password goes only inside TLS)."""

    def __init__(self, user: str, password: str, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._auth = [("Authorization", f"Basic {credentials}")] if user or password else []

    def send_headers(self, connection: http.client.HTTPConnection, headers: Any) -> None:
        super().send_headers(connection, [*headers, *self._auth])


class Supervisor:
    """One supervisord, local (unix://) or remote (http:// or https:// with basic auth)."""

    def __init__(
        self,
        url: str,
        user: str = "",
        password: str = "",
        timeout: float = 10.0,
        ca_bundle: Path | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout  # SUPERVISOR_TIMEOUT: one whole XML-RPC call
        self._hung = ""
        parts = urlsplit(url)
        self._transport: Any
        if parts.scheme == "https":
            try:
                context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"CA_BUNDLE {ca_bundle}: {exc}") from None
            self._transport = _HttpsTransport(user, password, context)
            self._proxy: Any = xmlrpc.client.ServerProxy(
                url.rstrip("/") + "/RPC2", transport=self._transport
            )
        else:
            from supervisor.xmlrpc import SupervisorTransport  # start-up: unix:// and http://

            self._transport = SupervisorTransport(user or None, password or None, url)
            # The host part is ignored by the transport: it connects to `url` itself.
            self._proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=self._transport)
        remote = parts.scheme in ("http", "https")
        self.service_host = (parts.hostname if remote else None) or "127.0.0.1"

    def _call(self, what: str, method: Callable[..., Any], *args: Any) -> Any:
        if self._hung:  # once it failed to answer, do not wait again in this run
            raise SupervisorHung(self._hung)
        try:
            with deadline(self.timeout):
                return method(*args)
        except xmlrpc.client.Fault:
            raise
        except DeadlineExceeded:
            self._transport.close()
            self._hung = (
                f"supervisor {self.url}: {what}: no answer within {self.timeout:g} s "
                "(SUPERVISOR_TIMEOUT; is supervisord stopped or hung?)"
            )
            raise SupervisorHung(self._hung) from None
        except PermissionError:
            self._transport.close()
            raise ConfigError(
                f"SUPERVISOR_URL {self.url}: permission denied: run as root, or give this "
                "user the socket (chown= in supervisord.conf's [unix_http_server])"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            self._transport.close()
            raise ConfigError(
                f"SUPERVISOR_URL {self.url}: certificate not trusted ({exc.verify_message}): "
                "set CA_BUNDLE to the CA that signed it"
            ) from None
        except xmlrpc.client.ProtocolError as exc:
            if exc.errcode == 401:
                raise HostFault(f"supervisor {self.url}: {what}: wrong user/password") from None
            raise SupervisorUnavailable(f"supervisor {self.url}: {what}: {exc}") from None
        except (OSError, xmlrpc.client.Error, http.client.HTTPException) as exc:
            # A failed call leaves the transport's connection mid-request: drop it, or every
            # later call fails with CannotSendRequest (an HTTPException, not an OSError).
            self._transport.close()
            raise SupervisorUnavailable(f"supervisor {self.url}: {what}: {exc}") from None

    def info(self, name: str) -> ProcessInfo:
        """getProcessInfo for one program; DeployError when supervisor does not know it."""
        try:
            raw = self._call(f"info {name}", self._proxy.supervisor.getProcessInfo, name)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == Faults.BAD_NAME:
                raise NoSuchProgram(f"supervisor has no program named {name!r}") from None
            raise DeployError(f"supervisor: info {name}: {fault.faultString}") from None
        return ProcessInfo(
            name=name,
            state=str(raw["statename"]),
            pid=int(raw["pid"]),
            exitstatus=int(raw["exitstatus"]),
            spawnerr=str(raw.get("spawnerr", "")),
        )

    def restart(self, name: str) -> None:
        """Stop (if running) and start again, without waiting for startsecs."""
        self.stop(name)
        try:
            self._call(f"start {name}", self._proxy.supervisor.startProcess, name, False)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != Faults.ALREADY_STARTED:
                raise DeployError(f"supervisor: start {name}: {fault.faultString}") from None

    def stop(self, name: str) -> None:
        """Stop the program and wait until it has stopped.

        supervisord answers `stopProcess(wait=True)` only once the process is gone, which
        may be the program's `stopwaitsecs` (then SIGKILL) — longer than one call may
        take. So the stop is asked without waiting, and the state polled, each call
        bounded by SUPERVISOR_TIMEOUT, all of it by `stopwaitsecs` plus a margin.
        """
        try:
            self._call(f"stop {name}", self._proxy.supervisor.stopProcess, name, False)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != Faults.NOT_RUNNING:
                raise DeployError(f"supervisor: stop {name}: {fault.faultString}") from None
            return
        limit = self._stop_wait(name) + max(self.timeout, 5.0)
        deadline = time.monotonic() + limit
        while self.info(name).state == _STOPPING:
            if time.monotonic() >= deadline:
                # the version running, not the one to start, does not stop: the host's
                raise HostFault(f"supervisor: {name} still STOPPING after {limit:g} s")
            time.sleep(0.1)

    def _stop_wait(self, name: str) -> float:
        """The program's stopwaitsecs (supervisor's default, 10, when it cannot tell)."""
        try:
            configs = self._call("config", self._proxy.supervisor.getAllConfigInfo)
        except (xmlrpc.client.Fault, SupervisorUnavailable):
            return _DEFAULT_STOPWAITSECS
        for config in configs if isinstance(configs, list) else []:
            if isinstance(config, dict) and config.get("name") == name:
                value = config.get("stopwaitsecs")
                if isinstance(value, (int, float)) and value >= 0:
                    return float(value)
        return _DEFAULT_STOPWAITSECS


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def watch(
    sup: Supervisor,
    name: str,
    watch_seconds: float,
    port: int | None,
    start_timeout: float = 60.0,
    poll: float = 0.25,
) -> str:
    """The watch window (docs/agent.md, Supervisor): RUNNING past startsecs, the same pid
    for `watch_seconds`, the port open.

    Returns "" when healthy, else the reason it is not.
    """
    deadline = time.monotonic() + start_timeout
    info = sup.info(name)
    while info.state in _STARTING and time.monotonic() < deadline:
        time.sleep(poll)
        info = sup.info(name)
    if info.state != RUNNING:
        detail = info.spawnerr or f"exit status {info.exitstatus}"
        return f"{name} is {info.state} after restart ({detail})"
    pid = info.pid
    window_end = time.monotonic() + watch_seconds
    while True:
        info = sup.info(name)
        if info.state != RUNNING or info.pid != pid:
            return f"{name} did not stay up: {info.state}, pid {pid} -> {info.pid}"
        if time.monotonic() >= window_end:
            break
        time.sleep(poll)
    if port is not None:
        port_deadline = time.monotonic() + max(2.0, watch_seconds)
        while not port_open(sup.service_host, port):
            if time.monotonic() >= port_deadline:
                return f"{name} is RUNNING but port {port} does not accept connections"
            time.sleep(poll)
    return ""
