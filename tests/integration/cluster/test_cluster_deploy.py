"""Cluster mode end to end: three namespace hosts (one aarch64) reached over real SSH by
real ansible-playbook, packages from the real bin-manager through the real nginx cache.

The tests run in order on one lab: v1 everywhere, then v2 breaking on h2 only, then an
x86_64 v3 whose service never listens (health check fails)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from examples.cluster.build_package import HERE, build_package, program_for

from ansible_proxy.client import locks
from tests.support.cluster import ClusterLab
from tests.support.procs import wait_until

ARCHES = ("x86_64", "aarch64")


def publish(lab: ClusterLab, version: str, **overrides: str) -> dict[str, str]:
    shas = {}
    for arch in ARCHES:
        shas[arch] = lab.bin_manager.publish(
            "hello-pkg", build_package(arch, version, **overrides), arch
        )
    return shas


def tail(lab: ClusterLab) -> str:
    """The end of the proxy's log, for assertion messages."""
    return (lab.root / "cluster.log").read_text()[-3000:]


def state(lab: ClusterLab) -> dict[str, Any]:
    data = json.loads((lab.work_dir / "cluster-state.json").read_text())
    hello: dict[str, Any] = data["services"]["hello"]
    return hello


def runs(lab: ClusterLab) -> list[str]:
    return sorted(p.name for p in (lab.work_dir / "runs" / "hello").iterdir())


def test_a_new_package_reaches_every_host_with_its_arch_build(cluster_lab: ClusterLab) -> None:
    lab = cluster_lab
    shas = publish(lab, "1")
    before = lab.origin_downloads()
    result = lab.run(lab.write_manifests())
    assert result.returncode == 0, tail(lab)
    for host in lab.hosts:
        assert host.get() == f"hello {host.arch} 1\n"
        assert (host.app_dir / "bin" / "hello").read_text() == program_for(host.arch, "1")
        # every node also pulled the package through the cache (the playbook's get_url)
        assert (host.app_dir / "packages" / f"{shas[host.arch]}.tar.gz").is_file()
        assert state(lab)["hosts"][host.name]["version"] == shas[host.arch]
        assert state(lab)["hosts"][host.name]["history"] == {shas[host.arch]: "ok"}
    # 1 proxy + 3 nodes fetched; the origin served each of the 2 artifacts once
    assert lab.origin_downloads() - before == len(ARCHES)
    nodes = lab.bin_manager.admin_get("/bins/hello-pkg/nodes").json()["data"]
    assert "node-h3" in json.dumps(nodes)
    # The proxy's token enrolled its inventory's nodes as its own (node auth required).
    for host in lab.hosts:
        credential = lab.bin_manager.credential(f"node-{host.name}")
        assert (credential["status"], credential["proxy"]) == ("enrolled", "cluster-lab")
    assert lab.bin_manager.admin_get("/proxies").json()["data"][0]["nodes"] == len(lab.hosts)
    # one ansible-runner artifact dir per arch group, kept for later reading
    assert len(runs(lab)) == 2
    assert all((lab.work_dir / "runs" / "hello" / r / "artifacts").is_dir() for r in runs(lab))

    again = lab.run(lab.write_manifests())
    assert again.returncode == 0, tail(lab)
    assert len(runs(lab)) == 2  # idempotent: nothing to do, no playbook run


BREAK_ON_H2 = (HERE / "deploy.yml").read_text() + textwrap.indent(
    textwrap.dedent("""\

    - name: Simulate a node-local failure (disk full on h2)
      ansible.builtin.fail:
        msg: no space left on device
      when: inventory_hostname == "h2"
    """),
    "    ",
)


def test_a_playbook_failing_on_one_host_rolls_back_that_host_only(
    cluster_lab: ClusterLab,
) -> None:
    lab = cluster_lab
    v1 = {h.name: state(lab)["hosts"][h.name]["version"] for h in lab.hosts}
    v2 = publish(lab, "2", deploy=BREAK_ON_H2)
    result = lab.run(lab.write_manifests())
    assert result.returncode == 1, tail(lab)
    log = (lab.root / "cluster.log").read_text()
    assert "h2: task 'Simulate a node-local failure (disk full on h2)'" in log
    hosts = {h.name: h for h in lab.hosts}
    assert hosts["h1"].get() == "hello x86_64 2\n"
    assert hosts["h3"].get() == "hello aarch64 2\n"
    assert hosts["h2"].get() == "hello x86_64 1\n"  # rolled back by v1's rollback.yml
    h2 = state(lab)["hosts"]["h2"]
    assert h2["version"] == v1["h2"]
    assert h2["history"][v2["x86_64"]] == "err"
    assert state(lab)["hosts"]["h1"]["upgradePath"] == {v2["x86_64"]: v1["h1"]}

    status = lab.run_status()
    assert f"hello    h2    {v1['h2'][:12]}  {v2['x86_64'][:12]} err" in status

    count = len(runs(lab))
    again = lab.run(lab.write_manifests())
    # the known-bad sha is not retried on h2
    assert again.returncode == 0, tail(lab)
    assert len(runs(lab)) == count
    assert hosts["h2"].get() == "hello x86_64 1\n"


NEVER_LISTENS = """#!/usr/bin/python3
import time
while True:
    time.sleep(60)
"""


def test_a_failing_health_check_rolls_the_hosts_back(cluster_lab: ClusterLab) -> None:
    lab = cluster_lab
    before = {h.name: state(lab)["hosts"][h.name]["version"] for h in lab.hosts}
    v3 = lab.bin_manager.publish(
        "hello-pkg", build_package("x86_64", "3", program=NEVER_LISTENS), "x86_64"
    )
    result = lab.run(lab.write_manifests(health_timeout=3))
    assert result.returncode == 1, tail(lab)
    log = (lab.root / "cluster.log").read_text()
    assert "h1: health check failed after deploy" in log
    hosts = {h.name: h for h in lab.hosts}
    assert hosts["h1"].get() == "hello x86_64 2\n"  # back to what each host ran before
    assert hosts["h2"].get() == "hello x86_64 1\n"
    assert hosts["h3"].get() == "hello aarch64 2\n"  # no new aarch64 build: untouched
    for name in ("h1", "h2"):
        assert state(lab)["hosts"][name]["version"] == before[name]
        assert state(lab)["hosts"][name]["history"][v3] == "err"
    assert state(lab)["history"][v3] == "err"
    progress = lab.bin_manager.admin_get("/bins/hello-pkg/progress").json()["data"]
    failed = [p for p in progress if p["targetHash"] == v3 and p["status"] == "failed"]
    assert {p["nodeName"] for p in failed} == {"node-h1", "node-h2"}, progress
    for report in failed:  # the release's own failure: it counts against the release
        assert report["cause"] == "release"
        assert report["reason"] == "playbook: health check failed after deploy"


def evil_package() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("deploy.yml", b"- hosts: all\n  tasks: []\n"), ("../../evil", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def test_a_malicious_package_is_refused_and_a_held_lock_is_respected(
    cluster_lab: ClusterLab,
) -> None:
    lab = cluster_lab
    bad = lab.bin_manager.publish("hello-pkg", evil_package(), "aarch64")
    v4 = lab.bin_manager.publish("hello-pkg", build_package("x86_64", "4"), "x86_64")
    # another cluster run holds the x86_64 lock: this run must leave that group alone
    held = locks.acquire(lab.root / "locks", "hello.x86_64", v4, timeout=600)
    assert held is not None
    try:
        result = lab.run(lab.write_manifests())
    finally:
        held.release()
    assert result.returncode == 1, tail(lab)
    log = (lab.root / "cluster.log").read_text()
    assert "package refused: member '../../evil': path with '..'" in log
    assert "another run is deploying x86_64" in log
    assert not (lab.work_dir / "evil").exists()
    assert not (lab.work_dir / "releases" / "evil").exists()
    assert not (lab.work_dir / "releases" / "hello" / bad).exists()
    assert state(lab)["hosts"]["h3"]["history"][bad] == "err"
    hosts = {h.name: h for h in lab.hosts}
    assert hosts["h3"].get() == "hello aarch64 2\n"
    assert hosts["h1"].get() == "hello x86_64 2\n"


def settle(lab: ClusterLab, count: int) -> None:
    wait_until(lambda: lab.origin_downloads() >= count, 10, "the origin's download counter")


def test_the_cache_makes_one_origin_request_for_a_herd_and_passes_latest_through(
    cluster_lab: ClusterLab,
) -> None:
    lab = cluster_lab
    content = os.urandom(512 * 1024)
    sha = lab.bin_manager.publish("herd", content, "x86_64")
    url = f"{lab.cache_url}/api/v1/download/herd"
    before = lab.origin_downloads()

    def fetch(_: int) -> tuple[bytes, str]:
        response = httpx.get(url, params={"sha256": sha, "arch": "x86_64"}, timeout=30)
        return response.content, response.headers.get("x-cache-status", "")

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(fetch, range(8)))
    assert all(body == content for body, _ in answers)
    # the origin counts a request once its response is fully sent, maybe after nginx's
    settle(lab, before + 1)
    assert lab.origin_downloads() - before == 1  # proxy_cache_lock: one origin request
    assert fetch(0)[1] == "HIT"

    before = lab.origin_downloads()
    for _ in range(2):  # the latest pointer moves: never cached
        assert httpx.get(url, params={"arch": "x86_64"}, timeout=30).content == content
    settle(lab, before + 2)
    assert lab.origin_downloads() - before == 2
    api = httpx.get(f"{lab.cache_url}/api/v1/bins/herd", params={"arch": "x86_64"}, timeout=30)
    assert api.json()["data"]["sha256"] == sha
    assert "x-cache-status" not in api.headers


def test_an_unreachable_host_is_retried_next_tick_not_marked_bad(cluster_lab: ClusterLab) -> None:
    lab = cluster_lab
    hosts = {h.name: h for h in lab.hosts}
    v4 = hashlib.sha256(build_package("x86_64", "4")).hexdigest()  # published above, not deployed
    hosts["h2"].stop_sshd()
    try:
        result = lab.run(lab.write_manifests())
    finally:
        hosts["h2"].start_sshd()
    assert result.returncode == 75, tail(lab)
    log = (lab.root / "cluster.log").read_text()
    assert "h2: unreachable (next tick)" in log
    assert hosts["h1"].get() == "hello x86_64 4\n"
    assert hosts["h2"].get() == "hello x86_64 1\n"
    assert state(lab)["hosts"]["h2"]["history"][v4] == ""  # in progress, not "err"
    progress = lab.bin_manager.admin_get("/bins/hello-pkg/progress").json()["data"]
    (report,) = [p for p in progress if p["targetHash"] == v4 and p["status"] == "failed"]
    assert (report["nodeName"], report["cause"]) == ("node-h2", "host")  # never the release's
    assert report["reason"].startswith("unreachable: ")

    again = lab.run(lab.write_manifests())
    assert again.returncode == 0, tail(lab)
    assert hosts["h2"].get() == "hello x86_64 4\n"
    assert state(lab)["hosts"]["h2"]["history"][v4] == "ok"
