"""A big fleet in a bin-manager's database in seconds: nodes (and what they run) inserted
in bulk with the server's own models and migrations, before `bin-manager serve` starts.

Used by the paging tests and bench/dashboard_bench.py; registering 100,000 nodes through
the API would take minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from ansible_proxy.server.db.engine import make_engine, migrate
from ansible_proxy.server.db.models import Bin, Node, NodeBin

BATCH = 10_000


def database_url(data_dir: Path) -> str:
    """The SQLite URL `bin-manager serve --data-dir data_dir` uses."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite+pysqlite:///{(data_dir / 'bin-manager.sqlite3').resolve()}"


def node_name(index: int) -> str:
    return f"node-{index:06d}"


def insert_nodes(
    url: str,
    count: int,
    *,
    runs: dict[str, list[str]] | None = None,
    stale_every: int = 0,
) -> None:
    """`count` nodes node-000000…, x86_64; every `stale_every`-th one silent for an hour.
    `runs` {bin: [sha256, …]}: each node reports one of the shas, in turn (the bins are
    created if missing)."""
    engine = make_engine(url)
    try:
        migrate(engine)
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        with engine.begin() as db:
            bin_ids = {}
            for name in runs or {}:
                found = db.scalar(select(Bin.id).where(Bin.name == name))
                if found is None:
                    db.execute(insert(Bin).values(name=name, paused=False, created_at=now))
                    found = db.scalar(select(Bin.id).where(Bin.name == name))
                bin_ids[name] = found
            first_id = (db.scalar(select(Node.id).order_by(Node.id.desc()).limit(1)) or 0) + 1
            for start in range(0, count, BATCH):
                indexes = range(start, min(start + BATCH, count))
                db.execute(
                    insert(Node),
                    [
                        {
                            "id": first_id + i,
                            "name": node_name(i),
                            "cpu_arch": "x86_64",
                            "os_release": "Debian GNU/Linux 12 (bookworm)",
                            "agent_version": "1.4.2",
                            "first_seen": now,
                            "last_seen": now - timedelta(hours=1)
                            if stale_every and i % stale_every == 0
                            else now,
                        }
                        for i in indexes
                    ],
                )
                for name, shas in (runs or {}).items():
                    db.execute(
                        insert(NodeBin),
                        [
                            {
                                "node_id": first_id + i,
                                "bin_id": bin_ids[name],
                                "sha256": shas[i % len(shas)],
                                "version": "latest",
                                "reported_at": now,
                            }
                            for i in indexes
                        ],
                    )
    finally:
        engine.dispose()
