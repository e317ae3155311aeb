"""Keyset paging over node names: the admin API's and the dashboard's node listings.

A page is `limit` rows ordered by node name after (or before) a name, never an offset:
each page costs an index range scan of `limit` rows on the unique index of
`nodes.name`, however many nodes there are, and a node added or forgotten between two
requests neither repeats nor skips another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.orm import Session

from ansible_proxy.names import MAX_NODE_NAME, is_node_name, node_name_refusal
from ansible_proxy.server.db.models import Node
from ansible_proxy.server.problems import Unprocessable

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# A prefix of a node name: the same characters, possibly empty, possibly "." or "..".
AnySelect = Select[*tuple[Any, ...]]  # a select of any columns (one that includes Node)
_PREFIX_RE = re.compile(rf"[A-Za-z0-9._-]{{0,{MAX_NODE_NAME}}}")


@dataclass(frozen=True)
class Cursor:
    """Which page: at most `limit` names after `after` (or before `before`), all with `prefix`."""

    limit: int = DEFAULT_LIMIT
    after: str | None = None
    before: str | None = None
    prefix: str = ""


@dataclass(frozen=True)
class Page:
    """The rows of one page, how many match in all, and the cursors of its neighbours."""

    rows: list[Any]
    total: int
    next: str | None  # pass as `after` for the next page; None on the last one
    previous: str | None  # pass as `before` for the previous page; None on the first one


def cursor(
    limit: int | str | None = None,
    after: str | None = None,
    before: str | None = None,
    prefix: str | None = None,
) -> Cursor:
    """A Cursor from request values (empty means absent); Unprocessable (422) when refused."""
    if limit in (None, ""):
        size = DEFAULT_LIMIT
    else:
        text = str(limit)
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise Unprocessable(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        size = int(text)
    for name in (after, before):
        if name and not is_node_name(name):
            raise Unprocessable(node_name_refusal(name))
    if after and before:
        raise Unprocessable("give after or before, not both")
    if prefix and _PREFIX_RE.fullmatch(prefix) is None:
        raise Unprocessable(f"invalid node name prefix {prefix[:80]!r}: use A-Z a-z 0-9 . _ -")
    return Cursor(size, after or None, before or None, prefix or "")


def by_node_name(session: Session, query: AnySelect, where: Cursor) -> Page:
    """One page of `query` (a select that includes Node) ordered by node name."""
    name = Node.name
    if where.prefix:
        # The range start uses the index; the exact test keeps any collation honest.
        matches: ColumnElement[bool] = and_(
            name >= where.prefix, func.substr(name, 1, len(where.prefix)) == where.prefix
        )
        query = query.where(matches)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    if where.before is not None:
        window = query.where(name < where.before).order_by(name.desc())
    elif where.after is not None:
        window = query.where(name > where.after).order_by(name)
    else:
        window = query.order_by(name)
    rows = list(session.execute(window.limit(where.limit + 1)))
    more = len(rows) > where.limit  # in the direction of reading
    rows = rows[: where.limit]
    if where.before is not None:
        rows.reverse()
        more_before = more
        more_after = bool(rows) and _any(session, query, name >= where.before)
    else:
        more_after = more
        more_before = bool(rows) and where.after is not None
        if more_before and where.after is not None:
            more_before = _any(session, query, name <= where.after)
    first, last = (_name(rows[0]), _name(rows[-1])) if rows else (None, None)
    return Page(
        rows=rows,
        total=total or 0,
        next=last if more_after else None,
        previous=first if more_before else None,
    )


def _any(session: Session, query: AnySelect, condition: ColumnElement[bool]) -> bool:
    return bool(session.scalar(select(exists(query.where(condition).order_by(None)))))


def _name(row: Any) -> str:
    """The node name of a result row: its Node entity, wherever it is in the row."""
    for value in row:
        if isinstance(value, Node):
            return value.name
    raise TypeError("a paged query must select Node")
