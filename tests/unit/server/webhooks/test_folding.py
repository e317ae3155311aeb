"""Folding node events: repeats within the window and events beyond the limits per node and
per bin wait, merged into one row a group, and go out as one summary that counts them."""

from __future__ import annotations

from datetime import datetime, timedelta

from ansible_proxy.server.webhooks.folding import (
    Folded,
    Merge,
    Queued,
    Rules,
    Sent,
    Subject,
    folded_of,
    merged,
    plan,
    subject_of,
    summary,
)
from ansible_proxy.server.webhooks.queue import chat_text

NOW = datetime(2026, 12, 12, 9, 0, 0)
RULES = Rules(repeat_seconds=300, per_node=3, per_bin=5, period_seconds=60)


def failed(node: str = "web-01", reason: str = "watch: exited", bin_: str = "web") -> Subject:
    return Subject("node-rollback", bin_, node, "a" * 64, reason)


def row(
    id_: int,
    subject: Subject | None,
    *,
    due: bool = True,
    leased: bool = False,
    attempts: int = 0,
    folded: int = 0,
) -> Queued:
    return Queued(id_, subject, Folded(folded), due, leased, attempts)


def sent(subject: Subject, seconds_ago: float) -> Sent:
    return Sent(subject, NOW - timedelta(seconds=seconds_ago))


def test_the_subject_of_a_body_is_its_node_event_and_rollout_steps_have_none() -> None:
    body = {
        "event": "node-rollback",
        "data": {"binName": "web", "nodeName": "web-01", "sha256": "a" * 64, "reason": "x"},
    }
    assert subject_of(body) == Subject("node-rollback", "web", "web-01", "a" * 64, "x")
    rollout = {"event": "rollout-halted", "data": {"binName": "web", "release": "b" * 64}}
    assert subject_of(rollout) is None
    assert subject_of({"event": "x", "data": "not a mapping"}) is None
    assert folded_of(body) == Folded(0, "repeat")
    assert folded_of({"folded": {"count": 4, "scope": "bin"}}) == Folded(4, "bin")
    assert folded_of({"folded": {"count": "4", "scope": "galaxy"}}) == Folded(0, "repeat")


def test_nothing_sent_yet_the_oldest_goes_and_its_repeats_queued_with_it_are_merged() -> None:
    rows = [row(1, failed()), row(2, None), row(3, failed()), row(4, failed())]
    step = plan(rows, [], NOW, RULES)
    assert step.head == 1
    assert step.merges == (Merge(1, (3, 4), "repeat"),)
    assert step.held == 0


def test_a_repeat_of_one_sent_in_the_window_waits_and_holds_back_nothing() -> None:
    rows = [row(5, failed()), row(6, None), row(7, failed()), row(8, failed(reason="other"))]
    step = plan(rows, [sent(failed(), 299)], NOW, RULES)
    assert step.head == 6  # the rollout step after the waiting repeat goes now
    assert step.merges == (Merge(5, (7,), "repeat"),)
    assert step.held == 2


def test_after_the_window_the_merged_repeat_goes_out() -> None:
    rows = [row(5, failed(), folded=48), row(6, failed())]
    step = plan(rows, [sent(failed(), 300)], NOW, RULES)
    assert step.head == 5
    assert step.merges == (Merge(5, (6,), "repeat"),)


def test_beyond_the_limit_per_node_its_other_events_wait_merged_by_node() -> None:
    earlier = [sent(failed(reason=f"r{n}"), 10 * n) for n in range(3)]
    rows = [row(1, failed(reason="new 1")), row(2, failed(node="web-02")), row(3, failed("web-01"))]
    step = plan(rows, earlier, NOW, RULES)
    assert step.head == 2  # another node of the bin is not held back
    assert step.merges == (Merge(1, (3,), "node"),)
    assert step.held == 2
    later = plan(rows, earlier, NOW + timedelta(seconds=41), RULES)  # one left the window
    assert later.head == 1


def test_beyond_the_limit_per_bin_every_node_of_it_waits_merged_by_bin() -> None:
    earlier = [sent(failed(node=f"web-{n:02}"), 1) for n in range(5)]
    rows = [row(1, failed(node="web-10")), row(2, failed(node="web-11", bin_="db"))]
    rows.append(row(3, failed(node="web-12")))
    step = plan(rows, earlier, NOW, RULES)
    assert step.head == 2
    assert step.merges == (Merge(1, (3,), "bin"),)


def test_a_row_backing_off_holds_back_the_rest_but_waiting_rows_still_merge() -> None:
    rows = [row(1, None, due=False, attempts=2), row(2, failed()), row(3, failed())]
    step = plan(rows, [sent(failed(), 5)], NOW, RULES)
    assert step.head is None
    assert step.merges == (Merge(2, (3,), "repeat"),)
    leased = plan([row(1, None, leased=True), row(2, None)], [], NOW, RULES)
    assert leased.head is None  # another process is sending the head


def test_rows_tried_before_or_leased_are_never_merged() -> None:
    rows = [row(1, failed(), attempts=1), row(2, failed(), leased=True), row(3, failed())]
    rows.append(row(4, failed()))
    step = plan(rows, [sent(failed(), 5)], NOW, RULES)
    assert step.merges == (Merge(3, (4,), "repeat"),)


def test_zero_turns_each_rule_off() -> None:
    off = Rules(repeat_seconds=0, per_node=0, per_bin=0, period_seconds=60)
    earlier = [sent(failed(), 1) for _ in range(50)]
    step = plan([row(1, failed()), row(2, failed())], earlier, NOW, off)
    assert step.head == 1
    assert step.held == 0


def test_merged_counts_add_up_and_the_widest_scope_wins() -> None:
    head = {"event": "node-rollback", "text": "web: web-01 failed", "data": {"nodeName": "web-01"}}
    once = merged(head, [{"event": "node-rollback"}, {"folded": {"count": 3}}], "repeat")
    assert once["folded"] == {"count": 2 + 3, "scope": "repeat"}
    twice = merged(once, [{"folded": {"count": 10, "scope": "node"}}], "repeat")
    assert twice["folded"] == {"count": 5 + 11, "scope": "node"}
    assert head.get("folded") is None  # a new dict
    assert summary(head) == ""
    assert summary(once) == " (and 5 more like it)"
    assert summary(twice) == " (and 16 more from web-01)"
    by_bin = merged({"data": {"binName": "web"}}, [{}], "bin")
    assert summary(by_bin) == " (and 1 more of web)"


def test_chat_text_is_one_line_with_slack_and_mattermost_markup_broken() -> None:
    reason = "watch: <!channel> see <https://evil.example|the dashboard> & \n more"
    assert chat_text(f"web: web-01 failed: {reason}") == (
        "web: web-01 failed: watch: &lt;!channel&gt; see "
        "&lt;https://evil.example|the dashboard&gt; &amp; more"
    )
    joiner = "\u2060"  # invisible: no mention or Markdown link is parsed across it
    assert chat_text("@channel @here, see [this](https://evil.example) a@b @ 1") == (
        f"@{joiner}channel @{joiner}here, see [this]{joiner}(https://evil.example) a@{joiner}b @ 1"
    )
