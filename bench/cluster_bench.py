"""Cluster mode origin egress: how often the bin-manager serves each deployed artifact.

For N namespace hosts (N = 3, 6; the last one aarch64, so 2 artifacts), one real
`ansible-proxy cluster run` deploys the example package through the nginx cache: the
proxy fetches each arch's package, and every node pulls its own through the cache too
(the example deploy.yml's get_url). The bin-manager's /metrics count the downloads it
answered; `cluster_origin_downloads_per_artifact` = bytes it served / artifact bytes,
per artifact (target 1.0 whatever N). The no-cache figure beside it is computed, not
measured (the namespace hosts cannot reach the loopback origin): every node of an arch
plus the proxy fetching from the origin, i.e. N_arch + 1 per artifact.

    .venv/bin/python -m bench.cluster_bench
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from examples.cluster.build_package import build_package
from tests.support.cluster import running_lab

ARCHES = ("x86_64", "aarch64")


def measure(hosts: int) -> tuple[float, float, float]:
    """(origin downloads per artifact, no-cache baseline per artifact, deploy seconds)."""
    root = Path(tempfile.mkdtemp(prefix="ansible-proxy-bench-cluster-"))
    arches = ["x86_64"] * (hosts - 1) + ["aarch64"]
    try:
        with running_lab(root, arches) as lab:
            sizes = {}
            for arch in ARCHES:
                package = build_package(arch, "1")
                lab.bin_manager.publish("hello-pkg", package, arch)
                sizes[arch] = len(package)
            before = lab.origin_downloads()
            started = time.monotonic()
            result = lab.run(lab.write_manifests())
            seconds = time.monotonic() - started
            if result.returncode != 0:
                log = (root / "cluster.log").read_text()
                raise RuntimeError(f"cluster run failed ({result.returncode}): {log[-2000:]}")
            for host in lab.hosts:
                if host.get() != f"hello {host.arch} 1\n":
                    raise RuntimeError(f"{host.name} does not serve the new version")
            served = lab.origin_downloads() - before
            # every origin download is a whole 200 of one artifact: bytes = count x size
            ratio = served / len(ARCHES)
            fetchers = {arch: arches.count(arch) + 1 for arch in ARCHES}  # nodes + the proxy
            baseline = sum(fetchers.values()) / len(ARCHES)
            return ratio, baseline, seconds
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    for hosts in (3, 6):
        ratio, baseline, seconds = measure(hosts)
        print(f"cluster_origin_downloads_per_artifact: {ratio:.2f}  (N={hosts})")
        print(f"cluster_no_cache_downloads_per_artifact: {baseline:.2f}  (N={hosts}, baseline)")
        print(f"cluster_deploy_seconds: {seconds:.1f}  (N={hosts}, 2 arch groups)")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
