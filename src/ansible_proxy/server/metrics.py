"""Prometheus metrics (a registry per app) and the structured access log middleware.

Owns prometheus-client. Request counts are labelled by route template, never by raw
path; fleet gauges are computed from the database at scrape time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ansible_proxy.server.db import listings
from ansible_proxy.server.hotpath.logbuffer import BufferedLines

ACCESS_LOGGER = "ansible_proxy.server.access"


class _FleetCollector(Collector):
    """Nodes known and nodes per bin per sha, read when Prometheus scrapes."""

    def __init__(self, sessions: Callable[[], Session]) -> None:
        self._sessions = sessions

    def describe(self) -> list[Metric]:
        return []  # computed at scrape: nothing to read at registration

    def collect(self) -> Iterator[Metric]:
        with self._sessions() as session:
            known = listings.node_count(session)
            per_sha = listings.nodes_per_bin_sha(session)
        nodes = GaugeMetricFamily("bin_manager_nodes", "Nodes known from keepalive")
        nodes.add_metric([], known)
        yield nodes
        running = GaugeMetricFamily(
            "bin_manager_bin_nodes",
            "Nodes whose last report says they run this sha256 of this bin",
            labels=["bin", "sha256"],
        )
        for name, sha, count in per_sha:
            running.add_metric([name, sha], count)
        yield running


class _RolloutCollector(Collector):
    """Staged rollouts (the newest per bin and arch), their steps, and the webhook queue."""

    def __init__(self, sessions: Callable[[], Session], webhooks: Callable[[], Any]) -> None:
        self._sessions = sessions
        self._webhooks = webhooks

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        with self._sessions() as session:
            rollouts = listings.newest_rollouts(session)
            steps = listings.rollout_step_counts(session)
        wave = GaugeMetricFamily(
            "bin_manager_rollout_wave",
            "The newest staged rollout of a bin and arch: its current wave (0: the canary)",
            labels=["bin", "arch", "state"],
        )
        halted = GaugeMetricFamily(
            "bin_manager_rollout_halted",
            "1 while the newest rollout of a bin and arch is halted (2: halted and reverted)",
            labels=["bin", "arch"],
        )
        for name, arch, state, current, _count, reverted in rollouts:
            wave.add_metric([name, arch, state], current)
            halted.add_metric([name, arch], (2 if reverted else 1) if state == "halted" else 0)
        yield wave
        yield halted
        counted = GaugeMetricFamily(
            "bin_manager_rollout_steps",
            "Rollout steps in the activity log, by kind (rollout-start, rollout-promote, …)",
            labels=["kind"],
        )
        for kind, count in steps:
            counted.add_metric([kind], count)
        yield counted
        sender = self._webhooks()
        if sender is None:
            return
        for metric, text, value in (
            ("bin_manager_webhook_queued", "Webhook deliveries waiting", sender.queued),
            (
                "bin_manager_webhook_delivered",
                "Webhook deliveries made by this process",
                sender.delivered,
            ),
            (
                "bin_manager_webhook_failed_attempts",
                "Failed webhook attempts of this process",
                sender.failed_attempts,
            ),
            (
                "bin_manager_webhook_folded",
                "Node events this process merged into a summary (repeats, over a limit)",
                sender.folded,
            ),
            (
                "bin_manager_webhook_held",
                "Node events waiting for a repeat window or a limit to pass",
                sender.held,
            ),
        ):
            family = GaugeMetricFamily(metric, text)
            family.add_metric([], value)
            yield family


class Metrics:
    """The app's own registry: request counters and the fleet gauges."""

    def __init__(
        self, sessions: Callable[[], Session], webhooks: Callable[[], Any] = lambda: None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "bin_manager_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "bin_manager_request_duration_seconds",
            "HTTP request duration by route template",
            ["route"],
            registry=self.registry,
        )
        self.registry.register(_FleetCollector(sessions))
        self.registry.register(_RolloutCollector(sessions, webhooks))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestLog:
    """Count one request and log its line (JSON, no headers or query string): what the
    AccessLog middleware and the agent's fast path (hotpath/fastpath.py) both record."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.logger = logging.getLogger(ACCESS_LOGGER)
        # prometheus-client's labels() validates and hashes on every call: keep the
        # children, and the line's escaped method and route with them.
        self._children: dict[tuple[Any, Any, int], tuple[Counter, Histogram, str]] = {}

    def record(self, scope: Scope, route: str, status: int, seconds: float) -> None:
        method = scope.get("method", "")
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.metrics.requests.labels(method, route, str(status)),
                self.metrics.duration.labels(route),
                f'"method": {json.dumps(method)}, "route": {json.dumps(route)}, ',
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        peer = json.dumps(f"{client[0]}:{client[1]}") if client else "null"
        # The same JSON object as json.dumps of a dict, at a third of the cost (one poll's
        # access-log line was a third of its CPU); only the strings need escaping.
        line = (
            f'{{"ts": {time.time():.3f}, {children[2]}"path": {json.dumps(scope.get("path", ""))}, '
            f'"status": {status}, "duration_ms": {seconds * 1000:.2f}, "client": {peer}}}'
        )
        if self._direct(logger):
            logger.handlers[0].add_line(line)  # type: ignore[attr-defined]
        else:
            logger.info(line)

    @staticmethod
    def _direct(logger: logging.Logger) -> bool:
        """True when logger.info(line) would only hand `line` to one BufferedLines (as
        serve configures it): then it is handed over without a LogRecord (3 µs)."""
        handlers = logger.handlers
        if len(handlers) != 1 or logger.propagate or logger.filters:
            return False
        handler = handlers[0]
        return (
            type(handler) is BufferedLines and not handler.filters and handler.level <= logging.INFO
        )


class AccessLog:
    """ASGI middleware: count and log each request (one JSON line, no headers); default
    every answer to `Cache-Control: no-store` (artifact downloads set their own)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.log = RequestLog(metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app dies before answering

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))  # only artifacts cache
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            matched = scope.get("route")
            route = getattr(matched, "path_format", None) or getattr(matched, "path", "unmatched")
            self.log.record(scope, str(route), status, time.perf_counter() - started)
