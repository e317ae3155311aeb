"""Fixtures for the bin-manager's routes in this process: `create_app(settings)` called
through httpx's ASGI transport (no socket, no subprocess), on a fresh SQLite database in
the test's temp dir.

`bin_manager_app` is configured as production is: node credentials required, a random
admin and enrolment token, every release to every node at once (as `BinManager` does);
`bin_manager_app_factory(**kwargs)` makes others (an agent token, "migrate", PostgreSQL,
any other setting). The same admin helpers as the real server (tests/support/admin.py).

What needs a real uvicorn stays with tests/support/server.py: the fast path's and the
limits' socket behaviour (server/limits/connections.py), --workers, TLS, kill -9 and
restarts, and everything the `bin-manager` CLI does.
"""

from __future__ import annotations

import functools
import gc
import itertools
import logging
import secrets
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from tests.support.admin import AdminCalls

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ansible_proxy.server.settings import Settings

__all__ = ["BinManagerApp", "bin_manager_app", "bin_manager_app_factory"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # as `bin-manager serve`
_ids = itertools.count(1)


@functools.cache
def _given() -> type[Settings]:
    """Settings from the arguments only: a BIN_MANAGER_* variable of the test run's own
    environment must not change the app under test. (Imported when first used: a test run
    without the server's tests does not load it.)"""
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

    from ansible_proxy.server.settings import Settings

    class Given(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    return Given


class _OnTheAppsLoop(httpx.BaseTransport):
    """A sync httpx transport that hands each request to the app (httpx's ASGITransport) on
    the event loop its start-up ran on: the app's locks, queues and tasks live there."""

    def __init__(self, portal: BlockingPortal, asgi: httpx.ASGITransport) -> None:
        self.portal = portal
        self.asgi = asgi

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        chunks = list(request.stream)  # type: ignore[arg-type]  # sent as the client sent them
        on_loop = httpx.Request(
            request.method, request.url, headers=request.headers, stream=_Chunks(chunks)
        )
        status, headers, body = self.portal.call(self._answer, on_loop)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))

    async def _answer(self, request: httpx.Request) -> tuple[int, httpx.Headers, bytes]:
        answer = await self.asgi.handle_async_request(request)
        body = b"".join([part async for part in answer.stream])  # type: ignore[union-attr]
        return answer.status_code, answer.headers, body


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


class _Captured(logging.Handler):
    """The log lines the app wrote while it served, formatted as the server's log file."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def watch(self, loggers: list[logging.Logger]) -> None:
        """Capture the records of `loggers`, each record once (a child's reaches its parent
        too when it propagates)."""
        for logger in loggers:
            if logger.name == "ansible_proxy" or not logger.propagate:
                logger.addHandler(self)

    def unwatch(self, loggers: list[logging.Logger]) -> None:
        for logger in loggers:
            logger.removeHandler(self)


class BinManagerApp(AdminCalls):
    """The bin-manager app served in this process; `client()` makes httpx clients for it.

    Its start-up (the heartbeat flusher, the rollout checker, the webhook sender) runs on
    an event loop of its own, in a thread (an anyio portal), and so does every request.
    An error the app does not handle is raised in the test, where a real server would log
    a traceback and answer 500.
    """

    url = "http://testserver"
    api = f"{url}/api/v1"

    def __init__(
        self,
        workdir: Path,
        *,
        node_auth: str = "required",
        agent_token: str | None = None,
        admin_token: str | None = None,
        enrolment_token: str | None = None,
        database_url: str | None = None,
        address: str = "127.0.0.1",
        **settings: Any,
    ) -> None:
        """`settings`: any other field of server/settings.py's Settings, by name
        (e.g. `max_upload_bytes=1024`, `metrics_token="…"`)."""
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.admin_token = admin_token or secrets.token_urlsafe(24)[:32]
        self.agent_token = agent_token
        self.node_auth = node_auth
        self.enrolment_token = enrolment_token or secrets.token_urlsafe(24)
        self.address = address
        settings.setdefault("default_rollout", "--immediate")
        self.settings = _given()(
            admin_token=self.admin_token,
            agent_token=agent_token,
            node_auth=node_auth,
            enrolment_token=self.enrolment_token,
            data_dir=self.data_dir,
            database_url=database_url,
            **settings,
        )
        self.settings.check_secrets()  # refused as `bin-manager serve` would refuse them
        self._running: ExitStack | None = None
        self.app: FastAPI
        self._log = _Captured()
        self._clients = itertools.count(50_000)

    def start(self) -> BinManagerApp:
        """Build the app (storage prepared, database migrated) and run its start-up."""
        from ansible_proxy.server.app import create_app
        from ansible_proxy.server.metrics import ACCESS_LOGGER

        self._loggers = [logging.getLogger("ansible_proxy"), logging.getLogger(ACCESS_LOGGER)]
        self._levels = [logger.level for logger in self._loggers]
        for logger in self._loggers:  # the access log may not propagate (cli._configure_logging)
            logger.setLevel(logging.INFO)
        self._log.watch(self._loggers)
        threshold = gc.get_threshold()
        with ExitStack() as stack:
            stack.callback(self._unwatch)
            self.app = create_app(self.settings)
            stack.callback(self.app.state.engine.dispose)
            portal = stack.enter_context(start_blocking_portal())
            stack.enter_context(
                portal.wrap_async_context_manager(self.app.router.lifespan_context(self.app))
            )
            self._portal = portal
            self._running = stack.pop_all()
        # The app's start-up tunes the collector for a long-lived server (app.settle_heap):
        # give this test process its own settings back.
        gc.unfreeze()
        gc.set_threshold(*threshold)
        return self

    def stop(self) -> None:
        """Run the app's shutdown (heartbeats flushed, background tasks ended)."""
        running, self._running = self._running, None
        if running is not None:
            running.close()
            # A PostgreSQL connection left in a reference cycle by the stopped app would
            # otherwise be collected during some later test, whose set-up then fails on
            # psycopg's "deleted while still open" warning: collect it here, quietly.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()

    def restart(self) -> BinManagerApp:
        """Shut the app down and build it again on the same data dir and database."""
        self.stop()
        return self.start()

    def _unwatch(self) -> None:
        self._log.unwatch(self._loggers)
        for logger, level in zip(self._loggers, self._levels, strict=True):
            logger.setLevel(level)

    def client(self, *, address: str | None = None, **kwargs: Any) -> httpx.Client:
        """A new httpx client (close it, or use `with`) whose requests come from `address`
        (the client IP the app sees: its throttles group by it). Takes httpx.Client's
        keyword arguments but `transport`."""
        assert self._running is not None, "start() the app first"
        asgi = httpx.ASGITransport(self.app, client=(address or self.address, next(self._clients)))
        kwargs.setdefault("base_url", self.url)
        return httpx.Client(transport=_OnTheAppsLoop(self._portal, asgi), **kwargs)

    def log(self) -> str:
        """What the app logged so far, one line per record (tracebacks included)."""
        return "\n".join(self._log.lines)


BinManagerAppFactory = Callable[..., BinManagerApp]


@pytest.fixture
def bin_manager_app_factory(tmp_path: Path) -> Iterator[BinManagerAppFactory]:
    """A callable(**kwargs of BinManagerApp) -> a started app; all stopped after the test."""
    started: list[BinManagerApp] = []

    def make(**kwargs: Any) -> BinManagerApp:
        app = BinManagerApp(tmp_path / f"bin-manager-app-{next(_ids)}", **kwargs)
        started.append(app)
        return app.start()

    yield make
    for app in reversed(started):
        app.stop()


@pytest.fixture
def bin_manager_app(bin_manager_app_factory: BinManagerAppFactory) -> BinManagerApp:
    """A fresh app: its own data dir and SQLite, node credentials required, random tokens."""
    return bin_manager_app_factory()
