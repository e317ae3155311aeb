"""The benchmarks' workspace: one temp dir, the services started in it, and cleanup.

The services are tests/support's launchers (each process in its own group, ended by
PID); the workspace stops them and removes the temp dir when it closes, whatever happened.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Protocol, TypeVar

VENV_BIN = Path(sys.executable).parent
MIB = 1024 * 1024


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


class Workspace:
    """A temp dir plus the services started in it; closing stops them and removes the dir."""

    def __init__(self, prefix: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"ansible-proxy-bench-{prefix}-"))
        self._services: list[Stoppable] = []

    def path(self, *parts: str) -> Path:
        """A directory under the workspace, created on first use."""
        target = self.root.joinpath(*parts)
        target.mkdir(parents=True, exist_ok=True)
        return target

    def track(self, service: S) -> S:
        """Stop `service` when the workspace closes (newest first); track it before start()."""
        self._services.append(service)
        return service

    def close(self) -> None:
        for service in reversed(self._services):
            service.stop()
        self._services.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def terminate_on_sigterm() -> None:
    """Turn SIGTERM into an exception so that every workspace still cleans up."""

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def write_program(path: Path, tag: str, size: int = 0) -> str:
    """Write a tiny long-running shell program, padded after its last line to `size` bytes.

    The shell `exec`s before it reaches the padding, so a 256 MiB file still runs.
    Returns its sha256.
    """
    head = f"#!/bin/sh\n# {tag}\nexec sleep 100000\n".encode()
    block = hashlib.sha256(tag.encode()).digest() * (MIB // 32)
    with path.open("wb") as handle:
        handle.write(head)
        remaining = max(0, size - len(head))
        while remaining > 0:
            piece = block[:remaining]
            handle.write(piece)
            remaining -= len(piece)
    path.chmod(0o755)
    return sha256_file(path)


def timed(action: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def report(name: str, value: float, digits: int = 3) -> str:
    """One `name: value` line, printed at once (flushed) and returned."""
    line = f"{name}: {value:.{digits}f}"
    print(line, flush=True)
    return line


def note(text: str) -> None:
    """A progress remark on stderr, so stdout holds only `name: value` lines."""
    print(f"# {text}", file=sys.stderr, flush=True)


def env_with(**extra: str) -> dict[str, str]:
    """The current environment plus `extra` (no proxies: everything is on loopback)."""
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {k: v for k, v in os.environ.items() if k.lower() not in proxies}
    env.update(extra)
    return env
