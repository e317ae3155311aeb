"""The dashboard's views hand the templates the typed objects of view_types.py: each row
and page has exactly the keys its TypedDict names, with the values the pages show, and
every template renders from them with no name left undefined."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jinja2
import jinja2.utils
import pytest
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.app import create_app
from ansible_proxy.server.dashboard import render, view_types, views
from ansible_proxy.server.db import fleet
from ansible_proxy.server.db.models import (
    Bin,
    Event,
    Latest,
    Node,
    NodeBin,
    ProgressRow,
    Release,
)
from ansible_proxy.server.db.pages import Cursor
from ansible_proxy.server.settings import Settings

NOW = datetime(2026, 12, 8, 12, 0, 0)
OLD, NEW, AGENT = "1" * 64, "2" * 64, "a" * 64


def _keys(typed: Any) -> set[str]:
    return set(typed.__required_keys__ | typed.__optional_keys__)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Any:
    """web (x86_64: OLD then NEW, latest NEW; pinned on aarch64) and the agent's own bin;
    node a (amd64, on NEW, agent current), b (x86_64, on OLD, failed NEW twice: once the
    release's fault, once the host's), c (silent for an hour: stale)."""
    with sessions() as db:
        web = Bin(name="web", paused=False, created_at=NOW)
        agent = Bin(name="ansible-proxy", paused=False, created_at=NOW)
        db.add_all([web, agent])
        db.flush()
        releases = {
            key: Release(bin_id=bin_id, arch=arch, sha256=sha, size=len(sha),
                         published_at=NOW - timedelta(hours=hours))
            for key, bin_id, arch, sha, hours in (
                ("old", web.id, "x86_64", OLD, 3), ("new", web.id, "x86_64", NEW, 2),
                ("arm", web.id, "aarch64", OLD, 2), ("agent", agent.id, "x86_64", AGENT, 1),
            )
        }  # fmt: skip
        db.add_all(releases.values())
        db.flush()
        db.add_all(
            [
                Latest(bin_id=web.id, arch="x86_64", release_id=releases["new"].id,
                       paused_release_id=None, updated_at=NOW),
                Latest(bin_id=web.id, arch="aarch64", release_id=releases["arm"].id,
                       paused_release_id=None, updated_at=NOW),
                Latest(bin_id=agent.id, arch="x86_64", release_id=releases["agent"].id,
                       paused_release_id=None, updated_at=NOW),
            ]
        )  # fmt: skip
        nodes = {
            name: Node(name=name, cpu_arch=arch, os_release="Debian 12", agent_version="2.0",
                       first_seen=NOW - timedelta(days=1), last_seen=NOW - seen,
                       labels="role=web" if name == "a" else None)
            for name, arch, seen in (
                ("a", "amd64", timedelta(seconds=30)), ("b", "x86_64", timedelta(minutes=1)),
                ("c", "x86_64", timedelta(hours=1)),
            )
        }  # fmt: skip
        db.add_all(nodes.values())
        db.flush()
        db.add_all(
            [
                NodeBin(node_id=nodes["a"].id, bin_id=web.id, sha256=NEW, version="latest",
                        reported_at=NOW - timedelta(minutes=5)),
                NodeBin(node_id=nodes["b"].id, bin_id=web.id, sha256=OLD, version="latest",
                        reported_at=NOW - timedelta(minutes=6)),
                NodeBin(node_id=nodes["a"].id, bin_id=agent.id, sha256=AGENT,
                        version="latest", reported_at=NOW - timedelta(minutes=7)),
                ProgressRow(node_id=nodes["b"].id, bin_id=web.id, target_hash=NEW,
                            processing_time=4, status="failed", cause="release",
                            reported_at=NOW - timedelta(minutes=4),
                            reason="inspector: alerts: firing HighErrorRate"),
                ProgressRow(node_id=nodes["b"].id, bin_id=web.id, target_hash=NEW,
                            processing_time=1, status="failed", cause="host",
                            reported_at=NOW - timedelta(minutes=3), reason="download: timeout"),
                ProgressRow(node_id=nodes["a"].id, bin_id=web.id, target_hash=NEW,
                            processing_time=9, status="success", cause=None,
                            reported_at=NOW - timedelta(minutes=5), reason=None),
                Event(at=NOW - timedelta(hours=2), kind="publish", bin_name="web",
                      arch="x86_64", sha256=NEW),
                Event(at=NOW - timedelta(hours=2), kind="pin", bin_name="web",
                      arch="aarch64", sha256=OLD),
            ]
        )  # fmt: skip
        db.commit()
        yield db


def test_the_fleet_page_counts_stale_nodes_agents_behind_and_convergence(session: Session) -> None:
    page = views.fleet(session, NOW, Cursor())
    assert set(page) == _keys(view_types.FleetPage)
    for row in page["nodes"]:
        assert set(row) == _keys(view_types.NodeRow)
    by_name = {row["name"]: row for row in page["nodes"]}
    assert [by_name[n]["stale"] for n in "abc"] == [False, False, True]
    # a runs the agent's latest for its arch (amd64 is x86_64); b and c report none
    assert [by_name[n]["agentBehind"] for n in "abc"] == [False, True, True]
    assert page["agents"] == {"behind": 2, "nodes": 3}
    assert (page["total"], page["stale"]) == (3, 1)
    web = next(row for row in page["bins"] if row["name"] == "web")
    assert set(web) == _keys(view_types.BinRow)
    assert (web["nodes"], web["current"], web["percent"]) == (2, 1, 50)
    assert web["latest"] == {"aarch64": OLD, "x86_64": NEW}
    assert web["pinned"] == {"aarch64"}
    assert page["pager"] == {"total": 3, "prefix": "", "first_name": None, "last_name": "c",
                             "first": "?", "previous": None, "next": None}  # fmt: skip


def test_a_bin_page_has_typed_releases_failures_and_runners(session: Session) -> None:
    web = fleet.all_bins(session)[1]
    page = views.bin_page(session, web, NOW, Cursor(limit=1))
    assert set(page) == _keys(view_types.BinPage)
    x86 = next(arch for arch in page["arches"] if arch["arch"] == "x86_64")
    assert set(x86) == _keys(view_types.ArchRow)
    assert (x86["latest"], x86["nodes"], x86["current"]) == (NEW, 2, 1)
    new = next(release for release in x86["releases"] if release["sha256"] == NEW)
    assert set(new) == _keys(view_types.ReleaseRow)
    # the host's trouble is shown, never counted against the release
    assert (new["running"], new["failures"], new["latest"], new["signed"]) == (1, 1, True, None)
    assert [row["event"] for row in page["failures"]] == ["host-trouble", "rollback"]
    for row in page["failures"]:
        assert set(row) == _keys(view_types.FailureRow)
    assert page["failures"][1]["because"] == "by the inspector: alerts: firing HighErrorRate"
    assert page["failures"][1]["ago"] == "4 min ago"
    assert page["running"] == [{"node": "a", "arch": "x86_64", "sha256": NEW}]
    assert page["pager"]["next"] == "?after=a&limit=1"


def test_a_node_page_and_a_release_page(session: Session) -> None:
    node = session.query(Node).filter_by(name="b").one()
    page = views.node_page(session, node, NOW)
    assert set(page) == _keys(view_types.NodePage)
    assert set(page["node"]) == _keys(view_types.NodeShown) - {"agentBehind"}
    assert page["bins"] == [{"binName": "web", "sha256": OLD, "version": "latest",
                             "reportedAt": "2026-12-08T11:54:00Z", "latest": False}]  # fmt: skip
    assert [item["kind"] for item in page["timeline"]] == ["host-trouble", "rollback"]
    for item in page["timeline"]:
        assert set(item) == _keys(view_types.TimelineItem)
    web = fleet.all_bins(session)[1]
    release = session.query(Release).filter_by(arch="x86_64", sha256=NEW).one()
    shown = views.release_page(session, web, release, NOW, Cursor())
    assert set(shown) == _keys(view_types.ReleasePage)
    assert (shown["latest"], shown["failures"], shown["publishedAgo"]) == (True, 1, "2 h ago")
    assert [row["name"] for row in shown["nodes"]] == ["a"]
    assert set(shown["nodes"][0]) == _keys(view_types.ReleaseNodeRow) - {"agentBehind"}


def test_the_activity_mixes_operators_steps_and_nodes_reports_newest_first(
    session: Session,
) -> None:
    items = views.activity(session, NOW)
    for item in items:
        assert set(item) == _keys(view_types.ActivityItem)
    assert [(item["kind"], item["node"]) for item in items] == [
        ("host-trouble", "b"), ("rollback", "b"), ("upgrade", "a"), ("pin", None),
        ("publish", None),
    ]  # fmt: skip
    assert [item["tone"] for item in items] == ["warn", "bad", "ok", "warn", "ok"]


class _NoMissingKey(jinja2.Undefined):
    """Undefined that fails at once when a template reads a key or attribute that a view's
    object lacks (a name the page's context lacks stays the lenient default)."""

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = jinja2.utils.missing,
        name: str | None = None,
        exc: type[jinja2.TemplateRuntimeError] = jinja2.UndefinedError,
    ) -> None:
        if obj is not jinja2.utils.missing and not isinstance(obj, jinja2.Undefined):
            raise exc(f"{type(obj).__name__} has no {name!r}")
        super().__init__(hint, obj, name, exc)


PAGES = ["/", "/?limit=1", "/bins/web", f"/bins/web/releases/x86_64/{NEW}",
         f"/bins/web/releases/x86_64/{OLD}", "/nodes/a", "/nodes/b", "/activity"]  # fmt: skip


def test_every_page_reads_only_what_its_typed_objects_hold(
    session: Session, db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    strict = jinja2.Environment(
        loader=render.templates().loader, autoescape=True, undefined=_NoMissingKey
    )
    strict.filters.update(render.templates().filters)
    monkeypatch.setattr(render, "templates", lambda: strict)
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite+pysqlite:///{db}")
    app = create_app(settings)

    async def pages() -> list[tuple[str, int, str]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [
                (page, answer.status_code, answer.text)
                for page in PAGES
                for answer in [await client.get(f"/dashboard{page}")]
            ]

    for page, status, html in asyncio.run(pages()):
        assert status == 200, f"{page}: {html[:300]}"
        assert "</main>" in html or "</body>" in html, page
