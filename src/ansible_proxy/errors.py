"""The project's error tree; `cli.py` modules map each branch to an exit code.

AnsibleProxyError                 cli.py maps each branch to an exit code
├── ConfigError      bad flags, env, manifest: fix and rerun       EXIT_CONFIG = 2
├── RetryableError   API down, 5xx, lock held: the next tick       EXIT_RETRY = 75
└── DeployError      hash mismatch, restart failed, playbook failed EXIT_DEPLOY = 1
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
