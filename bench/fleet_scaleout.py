"""Scale-out benchmark: one vs two `bin-manager serve` on one PostgreSQL behind nginx.

The load is the no-op tick (GET /keepalive, a database write; GET /bins, from memory),
alternating over 1,000 enrolled nodes, each with its own token (node auth required, as
operators run it), driven by wrk with keep-alive connections.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from tests.support.nginx import NginxProxy
from tests.support.postgres import running_postgres
from tests.support.server import BinManager

from bench.fleet_agents import enrol
from bench.wrk import WRK, WrkResult, parse_wrk

NODES = 1_000
ACCEL = {"BIN_MANAGER_X_ACCEL_REDIRECT": "/_artifacts/"}
_TICK_LUA = """\
local i = 0
request = function()
  i = i + 1
  local n = math.floor(i / 2) %% %(nodes)d
  local node = "node-" .. n
  local headers = {["Authorization"] = "Bearer " .. tokens[n + 1]}
  if i %% 2 == 0 then
    return wrk.format("GET", "/api/v1/keepalive?nodeName=" .. node, headers)
  end
  return wrk.format("GET", "/api/v1/bins?arch=x86_64&nodeName=" .. node, headers)
end
"""


def start_replicas(workdir: Path, database_url: str, count: int) -> list[BinManager]:
    """`count` servers on one database sharing one data directory (the artifacts)."""
    first = BinManager(
        workdir / "replica-1", database_url=database_url, extra_env=ACCEL, node_auth="required"
    ).start()
    replicas = [first]
    for index in range(2, count + 1):
        home = workdir / f"replica-{index}"
        home.mkdir(parents=True)
        (home / "data").symlink_to(first.data_dir)
        replica = BinManager(
            home,
            database_url=database_url,
            extra_env=ACCEL,
            admin_token=first.admin_token,
            node_auth="required",
        )
        replicas.append(replica.start())
    return replicas


def tick_script(api: str, enrolment_token: str, nodes: int) -> str:
    """wrk's Lua for the no-op tick of `nodes` nodes, enrolled now (POST /enrol)."""
    names = [f"node-{i}" for i in range(nodes)]
    tokens = asyncio.run(enrol(api, enrolment_token, names))
    table = ", ".join(f'"{tokens[name]}"' for name in names)  # token_urlsafe: no quoting
    return f"local tokens = {{{table}}}\n" + _TICK_LUA % {"nodes": nodes}


def _wrk(url: str, script: Path, seconds: int) -> WrkResult:
    argv = [WRK, "-t2", "-c64", f"-d{seconds}s", "--latency", "-s", str(script), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=True)
    return parse_wrk(done.stdout)


def replicas_throughput(workdir: Path, quick: bool) -> tuple[float, float]:
    """Good answers per second through nginx with one, then two replicas."""
    from bench.fleet_sim import publish_fleet

    workdir.mkdir(parents=True, exist_ok=True)
    started: list[BinManager | NginxProxy] = []
    with running_postgres("ansible-proxy-fleet-pg-") as pg:
        try:
            replicas = start_replicas(workdir, pg.url(pg.create_database()), 2)
            started.extend(replicas)
            publish_fleet(replicas[0])
            assert replicas[0].enrolment_token is not None
            script = workdir / "tick.lua"
            script.write_text(tick_script(replicas[0].api, replicas[0].enrolment_token, NODES))
            seconds = 3 if quick else 8
            best = {1: 0.0, 2: 0.0}
            for count in (1, 2, 1, 2):  # interleaved, best of two: the machine is shared
                ports = [replica.port for replica in replicas[:count]]
                nginx = NginxProxy(
                    workdir / f"nginx-{count}", ports, replicas[0].data_dir / "artifacts"
                )
                started.append(nginx.start())
                result = _wrk(nginx.url, script, seconds)
                nginx.stop()
                print(
                    f"  {count} replica(s) on PostgreSQL behind nginx: {result.ok_rps:7.1f} "
                    f"req/s p99 {result.p99_ms:6.1f} ms non-2xx {result.non_2xx} "
                    f"socket errors {result.socket_errors}",
                    flush=True,
                )
                best[count] = max(best[count], result.ok_rps)
            return best[1], best[2]
        finally:
            for service in reversed(started):
                service.stop()
