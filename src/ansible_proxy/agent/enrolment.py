"""This node's own credential (docs/security.md): made on the first tick, enrolled once,
then sent as the bearer of every API request.

The token is made here (`secrets.token_urlsafe(32)`), kept in NODE_TOKEN_FILE (mode
0600, written atomically) and sent to the bin-manager once, at enrolment; the server
keeps only its sha256. Logs show only its fingerprint (the first 12 hex digits of that
sha256). Whether the bin-manager took it is remembered in the store's state file; losing
that costs one more enrolment request, which the server answers "already enrolled".
A bin-manager that answers 401 to the token without naming a revocation does not know it
(its database restored from a backup, or lost): the node says so once, loudly, and
enrols again with the same token (client/api.py, NotEnrolled).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path

from ansible_proxy.agent.host import Host
from ansible_proxy.client.config import AgentConfig
from ansible_proxy.client.files import fsync_dir
from ansible_proxy.errors import ConfigError, RetryableError

_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")  # protocol.NODE_TOKEN_PATTERN


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def node_token(path: Path) -> str:
    """The token in `path`, made and written (0600, atomically) when there is none."""
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        try:
            _write_private(path, token + "\n")
        except OSError as exc:
            raise ConfigError(f"NODE_TOKEN_FILE {path}: cannot write: {exc.strerror}") from None
        return token
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"NODE_TOKEN_FILE {path}: cannot read: {exc}") from None
    if _TOKEN.fullmatch(token) is None:
        raise ConfigError(
            f"NODE_TOKEN_FILE {path} holds no valid node token: remove it (the node then "
            "enrols again, and an admin must revoke and approve its name)"
        )
    return token


def _write_private(path: Path, text: str) -> None:
    """Temp file created 0600 (never readable by others, not even briefly), fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an old temp file of the same name kept its mode
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def ensure_enrolled(host: Host, info: dict[str, object]) -> None:
    """Enrol when the bin-manager has not taken this node's token yet; then send it.

    Pending approval: one log line and RetryableError (exit 75), nothing else done —
    unless the server still takes this node's writes as before (migrate mode).
    """
    cfg, api, log = host.cfg, host.api, host.log
    token = node_token(cfg.node_token_file)
    shown = fingerprint(token)
    if host.state.get("node", "enrolled") == shown:
        api.use_token(token)
        return
    answer = api.enrol(info, token, cfg.enrolment_token)
    if answer.status == "unsupported":
        _without_enrolment(host, answer.answer)
        return
    host.state.set("node", "enrolment", None)  # said again if the server loses it
    if answer.status == "enrolled":
        host.state.set("node", "enrolled", shown)
        host.state.save()
        api.use_token(token)
        log("info", f"enrolled with the bin-manager (fingerprint {shown})")
        return
    waiting = (
        f"waiting for approval on the bin-manager (fingerprint {shown}): "
        f"bin-manager nodes approve {cfg.node_name} --fingerprint {shown}"
    )
    if answer.legacy_writes:
        log("warning", f"{waiting}; meanwhile this node writes as before (migrate mode)")
        return
    raise RetryableError(waiting)


def how_to_ask_again(cfg: AgentConfig, refusal: str) -> str:
    """The bin-manager's refusal of this node's credential (revoked, or its name bound to
    another), with what a person does next: a new token in NODE_TOKEN_FILE, approved."""
    return (
        f"{refusal}; to ask again, remove NODE_TOKEN_FILE {cfg.node_token_file} and run "
        "`ansible-proxy run`: it makes a new token and waits for an admin's approval "
        f"(bin-manager nodes approve {cfg.node_name} --fingerprint …)"
    )


def enrol_again(host: Host, info: dict[str, object], why: str) -> None:
    """The bin-manager does not know this node's token (it answered `why`): said once,
    then enrolled again as on the first tick (ENROLMENT_TOKEN: at once; else pending)."""
    forget_enrolment(host, why)
    ensure_enrolled(host, info)


def forget_enrolment(host: Host, why: str) -> None:
    """Forget that the bin-manager took this node's token, with one warning line (in the
    log and on stderr, for cron mail); the next enrolment asks again."""
    shown = host.state.get("node", "enrolled")
    host.api.forget_token()
    host.api.not_enrolled = ""  # handled: a 401 after an enrolment again is news again
    if not shown:  # said already
        return
    how = (
        "with ENROLMENT_TOKEN"
        if host.cfg.enrolment_token
        else "as a new node: an admin must approve it"
    )
    line = (
        f"the bin-manager does not know this node's token (fingerprint {shown}), though it "
        f"took it before: was its database restored from a backup? ({why}); enrolling "
        f"again {how}"
    )
    host.log("warning", line)
    host.notices.append(line)
    host.state.set("node", "enrolled", None)
    host.state.save()


def _without_enrolment(host: Host, answer: str) -> None:
    """A server without enrolment (an original-design one): said once, not every tick."""
    if host.state.get("node", "enrolment") == "unsupported":
        return
    level = "warning" if host.cfg.enrolment_token else "info"  # a token it cannot use
    host.log(
        level,
        f"the bin-manager has no enrolment (POST /api/v1/enrol: {answer}): an original-design "
        "or older server; this node works as before, without a node token",
    )
    host.state.set("node", "enrolment", "unsupported")
    host.state.save()


def use_saved(host: Host) -> None:
    """For the inspector: send the node token when a tick got it enrolled; else as before."""
    path = host.cfg.node_token_file
    if not path.exists():
        return
    token = node_token(path)
    if host.state.get("node", "enrolled") == fingerprint(token):
        host.api.use_token(token)
