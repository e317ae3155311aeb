"""Following the admin API's paged node listings from the CLI (docs/api.md, paging).

A page is at most `limit` nodes by name; the next one starts `after` the last name of a
full page, so a short (or empty) page is the last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

PAGE_SIZE = 1000  # the server's largest page: fewest requests for a whole listing
Call = Callable[..., Any]  # client.py's `_call`: (http, method, url, **kwargs) -> data


def every_page(
    call: Call, http: httpx.Client, url: str, params: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every row of a paged listing at `url`, page after page, in name order."""
    rows: list[dict[str, Any]] = []
    query = {**(params or {}), "limit": str(PAGE_SIZE)}
    while True:
        page = call(http, "GET", url, params=query)
        rows += page
        if len(page) < PAGE_SIZE:
            return rows
        query["after"] = page[-1]["nodeName"]
