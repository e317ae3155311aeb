"""Which image really runs after a restart, for real (issue 24): a PID 1 that ignores
SIGTERM outlives its stopped `podman run`, and a program pinned to a fixed tag runs what
it likes; the port answers either way. The agent stops the old container by name, checks
the running container's image against the release's and rolls back when it differs; the
inspector says which image each service runs and judges it.
"""

from __future__ import annotations

from typing import Any

from tests.support.containers import http_answer
from tests.support.image_host import IMAGE, ImageHost

STILL_RAN = "still ran after its program stopped"


def row(answer: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in answer["services"] if s["service"] == "web")
    return found


def test_an_image_whose_pid1_ignores_sigterm_is_really_replaced_and_rolled_back(
    host: ImageHost,
) -> None:
    s1 = host.install("s1")
    s2 = host.publish("s2")

    result = host.run()
    assert result.returncode == 0, host.debug(result)
    # Checked by the agent before it said so: no wait, the old container is gone.
    assert http_answer(host.port) == "web s2"
    assert host.running_image() == host.release_image(s2)
    assert host.containers() == [("web", host.release_image(s2), "running")]
    assert STILL_RAN in host.log()
    entry = host.entry("web")
    assert (entry["version"], entry["history"]) == (s2, {s1: "ok", s2: "ok"})

    v3 = host.publish("v3")  # exits at start: the rollback must leave s2 serving
    failed = host.run()
    assert failed.returncode == 1, host.debug(failed)
    assert failed.stderr.strip().endswith("; rolled back"), failed.stderr
    assert http_answer(host.port) == "web s2"
    assert host.running_image() == host.release_image(s2)
    assert host.current_release() == s2
    entry = host.entry("web")
    assert (entry["version"], entry["history"]) == (s2, {s1: "ok", s2: "ok", v3: "err"})

    check, answer = host.check()
    web = row(answer)
    assert (check.returncode, web["outcome"]) == (0, "healthy"), answer
    assert web["runningImage"]["release"] == s2


def test_an_image_that_handles_sigterm_stops_with_its_program_and_is_reported(
    host: ImageHost,
) -> None:
    v1 = host.install("v1")
    v2 = host.install("v2")
    assert host.running_image() == host.release_image(v2)
    assert STILL_RAN not in host.log()  # nothing for the agent to stop: it ended on TERM
    assert host.containers() == [("web", host.release_image(v2), "running")]

    check, answer = host.check()
    web = row(answer)
    assert (check.returncode, web["outcome"], web["action"]) == (0, "healthy", "none"), answer
    assert web["checks"]["image"] == {
        "outcome": "healthy",
        "detail": f"runs release {v2[:12]} (image {host.release_image(v2)[:12]})",
    }
    assert web["runningImage"] == {
        "container": "web",
        "id": host.release_image(v2),
        "release": v2,
        "tag": f"{IMAGE}:v2",
    }
    table = host.run(command="check")
    assert table.returncode == 0, host.debug(table)
    assert "IMAGE" in table.stdout.splitlines()[0]
    assert f"healthy: runs release {v2[:12]}" in table.stdout
    assert v1 != v2


def test_a_program_pinned_to_another_tag_is_caught_by_the_inspector_and_the_agent(
    host_pinned: ImageHost,
) -> None:
    host = host_pinned  # its container is `web-pinned`: the manifest entry's `container`
    v1 = host.install("v1")
    v2 = host.install("v2")
    v1_image = host.release_image(v1)

    # An operator pins the program to the v1 tag and restarts it: v1 answers on the port.
    host.pin(f"{IMAGE}:v1")
    host.supervisord.call("stopProcess", "web")
    host.supervisord.call("startProcess", "web")
    host.wait_answer("web v1")

    host.env["CHECK_FAILURES"] = "1"
    check, answer = host.check()
    web = row(answer)
    expected = f"container web-pinned runs {IMAGE}:v1 (release {v1[:12]}, image {v1_image[:12]})"
    assert web["checks"]["image"] == {
        "outcome": "unhealthy",
        "detail": f"{expected}, not release {v2[:12]}",
    }, answer
    assert web["runningImage"] == {
        "container": "web-pinned",
        "id": v1_image,
        "release": v1,
        "tag": f"{IMAGE}:v1",
    }
    assert (check.returncode, web["action"], web["rollbackTo"]) == (1, "rolled-back", v1)
    assert host.entry("web")["version"] == v1

    # The next release: the pinned program still runs v1, so v2's successor is refused.
    v4 = host.publish("v4")
    result = host.run()
    assert result.returncode == 1, host.debug(result)
    assert f"{expected}, not release {v4[:12]}; rolled back" in result.stderr, result.stderr
    report = host.last_progress()
    assert (report["targetHash"], report["status"]) == (v4, "failed")
    assert report["reason"] == f"watch: {expected}, not release {v4[:12]}"
    entry = host.entry("web")
    assert (entry["version"], entry["history"][v4]) == (v1, "err")
    assert host.current_release() == v1
    assert http_answer(host.port) == "web v1"
