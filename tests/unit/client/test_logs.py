"""The log: one call is exactly one line, whatever a hostile server puts in the text."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ansible_proxy.client.logs import Log, escape_controls

FORGED = "bad sha\n2026-01-01 00:00:00 [1] INFO app: upgraded and healthy"
HOSTILE = f"{FORGED}\rover\x1b[31mred\x00\x7f\x85\x9b\u2028\ttab"


def test_text_lines_show_every_control_character_escaped(tmp_path: Path) -> None:
    path = tmp_path / "agent.log"
    echo = io.StringIO()
    log = Log(path, "text", echo)
    log("error", HOSTILE, "app\n", "ab" * 32)
    log("info", "next")
    log.close()
    lines = path.read_text().split("\n")
    assert lines[-1] == ""
    assert len(lines) == 3
    first = lines[0]
    assert first.endswith(
        " ERROR app\\n@abababababab: bad sha\\n2026-01-01 00:00:00 [1] INFO app: upgraded and "
        "healthy\\rover\\x1b[31mred\\x00\\x7f\\x85\\x9b\\u2028\\ttab"
    )
    assert not any(ch in first for ch in "\r\x1b\x00\x7f\x85\x9b\u2028\t")
    assert echo.getvalue() == path.read_text()


def test_a_short_sha_is_cut_before_escaping(tmp_path: Path) -> None:
    path = tmp_path / "agent.log"
    log = Log(path, "text")
    log("info", "m", "app", "a" * 10 + "\n\n" + "a" * 52)
    log.close()
    assert " INFO app@aaaaaaaaaa\\n\\n: m\n" in path.read_text()


def test_json_lines_are_one_object_holding_the_original_text(tmp_path: Path) -> None:
    path = tmp_path / "agent.log"
    log = Log(path, "json")
    log("error", HOSTILE, "app\n", "\x1b" + "a" * 11)
    log.close()
    text = path.read_text()
    assert text.count("\n") == 1
    assert text.endswith("\n")
    assert len(text.splitlines()) == 1  # no raw U+0085 or U+2028 either
    record = json.loads(text)
    assert (record["message"], record["bin"], record["sha"]) == (
        HOSTILE, "app\n", "\x1b" + "a" * 11
    )  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, ünïcode", "plain text, ünïcode"),
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[31m", "\\x1b[31m"),
        ("\x01\x1f\x7f\x80\x9f", "\\x01\\x1f\\x7f\\x80\\x9f"),
        ("\u2028\u2029", "\\u2028\\u2029"),
    ],
)
def test_escape_controls(raw: str, shown: str) -> None:
    assert escape_controls(raw) == shown
