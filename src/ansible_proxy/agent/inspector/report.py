"""The inspector's reports of its rollbacks to the bin-manager: queued in the state file
at once, sent now or by the first later run that reaches the API, each exactly once.

A report is progress `failed` for the bad sha (with the reason and whose failure it is,
docs/api.md), then `POST /bins/{bin}` with the version now running.
"""

from __future__ import annotations

from typing import Any

from ansible_proxy.agent.adapters.store import State
from ansible_proxy.client import causes
from ansible_proxy.client.api import Api
from ansible_proxy.client.logs import Log
from ansible_proxy.errors import RetryableError


def queue_report(
    state: State,
    name: str,
    bad: str,
    running: str,
    seconds: int,
    reason: str = "",
    cause: str = causes.INSPECTOR_VERDICT,
) -> None:
    """Remember a rollback to report (sent now, or by a later run when the API is back)."""
    pending = state.get("pending", name)
    items: list[Any] = list(pending) if isinstance(pending, list) else []
    items.append(
        {"bad": bad, "running": running, "seconds": seconds, "reason": reason, "cause": cause}
    )
    state.set("pending", name, items)


def flush_reports(api: Api, state: State, log: Log) -> None:
    """Send the queued reports in order; stop at the first the API does not take."""
    pending = state.data.get("pending")
    if not isinstance(pending, dict):
        return
    for name in list(pending):
        items = pending[name] if isinstance(pending[name], list) else []
        while items:
            item = items[0]
            try:
                if not item.get("progressSent"):
                    api.report_progress(
                        name,
                        item["bad"],
                        int(item["seconds"]),
                        "failed",
                        str(item.get("reason") or ""),
                        # queued by an older agent without it: an inspector's verdict too
                        str(item.get("cause") or causes.INSPECTOR_VERDICT),
                    )
                    item["progressSent"] = True
                    state.dirty = True
                api.report_bin(name, item["running"])
            except RetryableError as exc:
                log("warning", f"rollback report not sent (retried next run): {exc}", name)
                return
            except (KeyError, TypeError, ValueError):
                log("warning", f"dropping a malformed queued report: {item!r:.80}", name)
            items.pop(0)
            state.dirty = True
            log("info", "rollback reported to the bin-manager", name, str(item.get("bad", "")))
        del pending[name]
        state.dirty = True
