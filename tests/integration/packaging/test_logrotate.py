"""The shipped logrotate file (ansible_proxy/share/logrotate/ansible-proxy) under the real
logrotate, while agent ticks keep writing.

The writers use the agent's own `Log` the way each tick does (open LOG_FILE in append
mode, write, close), so what is asserted is what an operator finds in /var/log.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.integration.packaging.rotation import SHIPPED, config_for, logrotate, read_log
from tests.support.procs import wait_until

# Ticks of 50 lines each, back to back, until `stop` exists: as busy as the agent can be.
BUSY_AGENT = textwrap.dedent("""\
    import sys
    from pathlib import Path
    from ansible_proxy.client.logs import Log
    log_file, stop = Path(sys.argv[1]), Path(sys.argv[2])
    n = 0
    while not stop.exists():
        log = Log(log_file)
        for _ in range(50):
            log("info", f"busy line {n}")
            n += 1
        log.close()
    print(n)
""")

# One long tick (a slow download): opens the log, writes, waits for `go`, writes again.
LONG_TICK = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    from ansible_proxy.client.logs import Log
    log_file, go = Path(sys.argv[1]), Path(sys.argv[2])
    log = Log(log_file)
    log("info", "long tick: download started")
    while not go.exists():
        time.sleep(0.01)
    log("info", "long tick: download finished")
    log.close()
""")


def _spawn(script: str, *args: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True
    )


def _has_lines(path: Path, text: str = "") -> bool:
    return path.exists() and path.stat().st_size > 0 and text in path.read_text()


def _end(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_rotation_loses_no_line_while_the_agent_writes(tmp_path: Path) -> None:
    log = tmp_path / "ansible-proxy.log"
    config = tmp_path / "logrotate.conf"
    config.write_text(config_for(log))
    state = tmp_path / "logrotate.state"

    long_tick = _spawn(LONG_TICK, log, tmp_path / "go")
    busy = _spawn(BUSY_AGENT, log, tmp_path / "stop")
    try:
        wait_until(lambda: _has_lines(log, "download started"), 20, "the long tick's line")
        for rotation in range(3):
            wait_until(lambda: _has_lines(log), 20, "the agent writing the live log")
            rotated = logrotate(config, state, "-f")  # -f: as if the week (or 50 MB) had passed
            assert (rotated.returncode, rotated.stderr) == (0, "")
            if rotation == 0:
                (tmp_path / "go").touch()  # the long tick ends after its file was rotated
                assert long_tick.wait(20) == 0
        wait_until(lambda: _has_lines(log), 20, "the agent writing the live log after rotation")
        (tmp_path / "stop").touch()
        stdout, _ = busy.communicate(timeout=60)
    finally:
        _end(long_tick, busy)
    assert busy.returncode == 0
    written = int(stdout)

    # delaycompress: the newest rotated log is plain text; older ones are gzipped
    files = [
        log,
        log.with_name(f"{log.name}.1"),
        *(log.with_name(f"{log.name}.{n}.gz") for n in (2, 3)),
    ]
    assert sorted(p.name for p in tmp_path.glob(f"{log.name}*")) == sorted(p.name for p in files)
    texts = {path.name: read_log(path) for path in files}
    assert all(texts.values()), {name: len(text) for name, text in texts.items()}

    # no line lost, none written twice, whichever file it landed in
    numbers = [
        int(n) for text in texts.values() for n in re.findall(r"busy line (\d+)$", text, re.M)
    ]
    assert len(numbers) == written
    assert sorted(numbers) == list(range(written))
    # the live log keeps getting lines: the last one written is there
    assert f"busy line {written - 1}\n" in texts[log.name]

    # the tick that had the log open during the rename finished in the rotated file
    (with_long_tick,) = [name for name, text in texts.items() if "download started" in text]
    assert "long tick: download finished" in texts[with_long_tick]
    assert with_long_tick == f"{log.name}.3.gz"  # rotated first, then moved on twice


def _daily_run_on(tmp_path: Path, name: str, size: int) -> Path:
    """A log of `size` bytes, seen by logrotate for the first time without -f."""
    line = "2025-01-01 00:00:00 [4242] INFO hello@0123456789ab: installed\n"
    log = tmp_path / name / "ansible-proxy.log"
    log.parent.mkdir()
    log.write_text(line * (size // len(line) + 1))
    config = tmp_path / f"{name}.conf"
    config.write_text(config_for(log))
    result = logrotate(config, tmp_path / f"{name}.state")  # no -f: the daily run
    assert (result.returncode, result.stderr) == (0, "")
    return log


def test_a_log_over_50_mb_is_rotated_before_the_week_is_out(tmp_path: Path) -> None:
    big = _daily_run_on(tmp_path, "big", 51 << 20)
    assert not big.exists()  # nocreate: the agent's next line creates it
    assert big.with_name(f"{big.name}.1").stat().st_size > 50 << 20
    small = _daily_run_on(tmp_path, "small", 1 << 20)
    assert small.stat().st_size > 1 << 20
    assert not small.with_name(f"{small.name}.1").exists()


def test_an_empty_or_missing_log_is_left_alone(tmp_path: Path) -> None:
    log = tmp_path / "ansible-proxy.log"
    config = tmp_path / "logrotate.conf"
    config.write_text(config_for(log))
    missing = logrotate(config, tmp_path / "state", "-f")  # missingok
    assert (missing.returncode, missing.stderr) == (0, "")
    log.touch()
    empty = logrotate(config, tmp_path / "state", "-f")  # notifempty
    assert (empty.returncode, empty.stderr) == (0, "")
    assert [p.name for p in tmp_path.glob("ansible-proxy.log*")] == ["ansible-proxy.log"]


def test_the_shipped_file_is_valid_as_installed(tmp_path: Path) -> None:
    # -d: parse and plan only, for /var/log/ansible-proxy.log itself; touches nothing
    result = logrotate(SHIPPED, tmp_path / "state", "-d")
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower(), result.stderr
    assert "rotating pattern: /var/log/ansible-proxy.log  weekly (8 rotations)" in result.stderr
    assert "log files >= 52428800 are rotated earlier" in result.stderr
