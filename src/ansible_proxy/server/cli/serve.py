"""`bin-manager serve`: the HTTP API under uvicorn, in one process or in --workers processes.

Its flags are main.py's table; the server's modules and uvicorn are imported here, inside
the functions that need them, so that no other command loads them (start-up time).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ansible_proxy.errors import ConfigError
from ansible_proxy.server.cli.admin_token import admin_token, enrolment_token
from ansible_proxy.server.cli.main import LIMIT_FLAGS
from ansible_proxy.server.cli.secret_files import SECRETS, env_name, secret_overrides

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ansible_proxy.server.settings import Settings

log = logging.getLogger("ansible_proxy.server")


# What `serve` tells its worker processes beyond the settings (they read env, not flags).
_WORKER_LOG_LEVEL = "BIN_MANAGER_WORKER_LOG_LEVEL"


def serve(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """`bin-manager serve`: the API, in this process or in --workers processes."""
    # Imported here, not at the top: the admin commands never load uvicorn (start-up time)
    import uvicorn

    # nor the server's modules.
    from ansible_proxy.server.app import create_app
    from ansible_proxy.server.settings import insecure_refusal, load_settings

    token = admin_token(args.admin_token_file, env)
    enrolment = enrolment_token(args.enrolment_token_file, env)
    if (args.ssl_certfile is None) != (args.ssl_keyfile is None):
        raise ConfigError("--ssl-certfile and --ssl-keyfile go together")
    settings = load_settings(
        admin_token=token,
        enrolment_token=enrolment,
        data_dir=args.data_dir,
        **secret_overrides(args, env),  # the database URL and other secrets, maybe from files
        insecure_no_auth=args.insecure_no_auth,
        require_signed=args.require_signed,
        **{setting: getattr(args, setting) for _, setting, _, _ in LIMIT_FLAGS},
    )
    refusal = insecure_refusal(settings, args.host)
    if refusal:
        raise ConfigError(f"refusing to start: {refusal}")
    _configure_logging(args.log_level)
    if settings.insecure_no_auth:
        log.warning("--insecure-no-auth: the admin API needs no token; never do this in production")
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "access_log": False,  # ours is structured and never shows headers or query strings
        "log_config": None,
        "log_level": args.log_level,
        "ssl_certfile": str(args.ssl_certfile) if args.ssl_certfile else None,
        "ssl_keyfile": str(args.ssl_keyfile) if args.ssl_keyfile else None,
        "timeout_graceful_shutdown": 5,
        **_connection_options(settings),
    }
    if args.workers > 1:
        _serve_workers(settings, args, options)
        return 0
    try:
        app = create_app(settings)
    except OSError as exc:
        raise ConfigError(f"cannot use the data directory {settings.data_dir}: {exc}") from None
    uvicorn.run(app, **options)
    return 0


def _serve_workers(settings: Settings, args: argparse.Namespace, options: dict[str, Any]) -> None:
    """uvicorn's worker processes, each building the app from the environment we pass on.

    Storage is prepared here, once. Each worker has its own caches (at most 1 s old, as
    between replicas) and heartbeat buffer; the dashboard's sessions are signed with the
    admin token, which is why --insecure-no-auth (a random key per process) is refused.
    """
    # Imported here, not at the top: the admin commands never load the server (start-up time).
    import uvicorn

    from ansible_proxy.server.app import prepare_storage

    if settings.insecure_no_auth or settings.admin_token is None:
        raise ConfigError("--workers above 1 needs an admin token (not --insecure-no-auth)")
    try:
        prepare_storage(settings)
    except OSError as exc:
        raise ConfigError(f"cannot use the data directory {settings.data_dir}: {exc}") from None
    os.environ["BIN_MANAGER_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["BIN_MANAGER_ADMIN_TOKEN"] = settings.admin_token.get_secret_value()
    if settings.enrolment_token is not None:  # it may have come from a file
        os.environ["BIN_MANAGER_ENROLMENT_TOKEN"] = settings.enrolment_token.get_secret_value()
    for secret in SECRETS:  # they may have come from files: the workers read env only
        value = getattr(settings, secret.setting)
        if value is not None:
            plain = value if isinstance(value, str) else value.get_secret_value()
            os.environ[env_name(secret)] = plain
    os.environ[_WORKER_LOG_LEVEL] = args.log_level
    if settings.require_signed:  # it may have come from --require-signed
        os.environ["BIN_MANAGER_REQUIRE_SIGNED"] = "1"
    for _, setting, _, _ in LIMIT_FLAGS:  # flags included: the workers read env only
        os.environ[f"BIN_MANAGER_{setting.upper()}"] = str(getattr(settings, setting))
    log.info("starting %d worker processes", args.workers)
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=args.workers, **options)


def _connection_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the connection limits; raises the open-files limit first."""
    # Imported here, not at the top: the admin commands never load uvicorn (start-up time).
    from ansible_proxy.server.limits.connections import (
        ConnectionLimits,
        protocol_factory,
        raise_fd_limit,
    )

    raise_fd_limit(settings.max_connections + 256)  # + the database, artifacts, logs
    limits = ConnectionLimits(
        max_url_bytes=settings.max_url_bytes,
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
    )
    return {
        "http": protocol_factory(limits),
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": settings.keepalive_seconds,
    }


def worker_app() -> FastAPI:
    """The app of one `serve --workers N` process (uvicorn calls this in each)."""
    # Imported here, not at the top: the admin commands never load the server (start-up time).
    from ansible_proxy.server.app import create_app
    from ansible_proxy.server.settings import load_settings

    _configure_logging(os.environ.get(_WORKER_LOG_LEVEL, "info"))
    return create_app(load_settings(), prepare=False)


def _configure_logging(level: str) -> None:
    # Imported here, not at the top: metrics.py loads the database layer (start-up time).
    from ansible_proxy.server.hotpath.logbuffer import BufferedLines
    from ansible_proxy.server.metrics import ACCESS_LOGGER

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    access = logging.getLogger(ACCESS_LOGGER)
    access.handlers[:] = [BufferedLines(sys.stderr)]  # the message alone, in batches
    access.propagate = False
    access.setLevel(logging.INFO)
    for library in ("httpx", "httpcore"):  # their INFO lines hold webhook URLs (secrets)
        logging.getLogger(library).setLevel(logging.WARNING)
    # Our formats use none of these: skip computing them for every log line (the logging
    # HOWTO's "Optimization"); a poll's access-log line was a third of its CPU time.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
