"""Prometheus's instant query API (`GET /api/v1/query`), for the inspector's alert check.

Owns the only Prometheus call. Anything but a well-formed success answer (unreachable,
timeout, HTTP error, non-JSON, error status, a non-vector result) is "unknown": never
healthy, and never a reason to roll back.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_proxy.client.deadline import DeadlineExceeded, deadline
from ansible_proxy.client.transport import Client, HttpError, HttpTimeout

DEFAULT_QUERY = 'ALERTS{alertstate="firing", service="{service}"}'


@dataclass(frozen=True)
class AlertAnswer:
    """`firing` is None when Prometheus gave no usable answer; `detail` says why or what."""

    firing: bool | None
    detail: str


def render_query(template: str, service: str) -> str:
    """The query for one service: `{service}` replaced by its name, escaped for PromQL."""
    escaped = service.replace("\\", "\\\\").replace('"', '\\"')
    return template.replace("{service}", escaped)


def query_alerts(
    client: Client, base_url: str, query: str, timeout: float | None = None
) -> AlertAnswer:
    """Run `query`; a non-empty vector means an alert is firing.

    `timeout` (PROMETHEUS_TIMEOUT) bounds the whole query, however slowly it answers.
    """
    url = f"{base_url.rstrip('/')}/api/v1/query"
    seconds = timeout if timeout is not None else client.timeout
    try:
        with deadline(seconds):
            response = client.request("GET", url, params={"query": query})
    except (HttpTimeout, DeadlineExceeded):
        return AlertAnswer(
            None, f"prometheus {url}: no answer within {seconds:g} s (PROMETHEUS_TIMEOUT)"
        )
    except HttpError as exc:
        return AlertAnswer(None, f"prometheus: unreachable: {exc}")
    try:
        body = response.json()
    except ValueError:
        return AlertAnswer(None, f"prometheus: HTTP {response.status}, answer is not JSON")
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        return AlertAnswer(None, f"prometheus: HTTP {response.status}: {str(error)[:120]}")
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        return AlertAnswer(None, "prometheus: answer is not an instant vector")
    result = data.get("result")
    if not isinstance(result, list):
        return AlertAnswer(None, "prometheus: answer has no result list")
    if not result:
        return AlertAnswer(False, "no firing alert")
    names = sorted({_alert_name(sample) for sample in result})
    return AlertAnswer(True, "firing: " + ", ".join(names))


def _alert_name(sample: object) -> str:
    metric = sample.get("metric") if isinstance(sample, dict) else None
    if isinstance(metric, dict):
        return str(metric.get("alertname") or metric.get("__name__") or "series")
    return "series"
