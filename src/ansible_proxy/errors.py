"""The project's error tree and every exit code; `cli.py` modules map one to the other.

AnsibleProxyError                 cli.py maps each branch to an exit code
├── ConfigError      bad flags, env, manifest: fix and rerun       EXIT_CONFIG = 2
├── RetryableError   API down, 5xx, lock held: the next tick       EXIT_RETRY = 75
└── DeployError      hash mismatch, restart failed, playbook failed EXIT_DEPLOY = 1

A run that did several things (the agent's binaries, the cluster's services) exits with
the worst of their codes, in one order for every command (`worst_exit`): a configuration
problem first (a person must act before anything of it can work), then a failed deploy
(rolled back, mailed), then "retry next tick", then `check`'s "only unknowns", then 0.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DEPLOY = 1
EXIT_CONFIG = 2
EXIT_UNKNOWN = 3  # `check` only: every service's health was "unknown" (nothing to act on)
EXIT_RETRY = 75  # EX_TEMPFAIL from sysexits.h: "try again later"


class AnsibleProxyError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = EXIT_DEPLOY


class ConfigError(AnsibleProxyError):
    """Bad flags, environment, config file or manifest: a person must fix it."""

    exit_code = EXIT_CONFIG


class RetryableError(AnsibleProxyError):
    """The API is down, slow or answering garbage, or a lock is held: try next tick."""

    exit_code = EXIT_RETRY


class DeployError(AnsibleProxyError):
    """A deploy failed: hash mismatch, restart failed, playbook failed."""

    exit_code = EXIT_DEPLOY


class HostFault(DeployError):
    """A deploy this host could not carry out for a reason of its own (a full disk, a
    download that is not the release): the release itself was never tried."""


# Worst first; see the module docstring. A code not listed (a bug) ranks as a failed deploy.
_SEVERITY = {EXIT_CONFIG: 4, EXIT_DEPLOY: 3, EXIT_RETRY: 2, EXIT_UNKNOWN: 1, EXIT_OK: 0}


def worst_exit(*codes: int) -> int:
    """The exit code of the worst outcome among `codes` (EXIT_OK for none)."""
    return max(codes, key=lambda code: _SEVERITY.get(code, _SEVERITY[EXIT_DEPLOY]), default=EXIT_OK)


def describe(exc: BaseException) -> str:
    """One line for an error we did not plan for: the file and the reason for OS errors."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return f"unexpected {type(exc).__name__}: {exc}"
