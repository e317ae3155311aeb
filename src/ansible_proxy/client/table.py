"""The host side's name for ansible_proxy/table.py (the tables of `status` and `check`)."""

from __future__ import annotations

from ansible_proxy.table import render_table

__all__ = ["render_table"]
