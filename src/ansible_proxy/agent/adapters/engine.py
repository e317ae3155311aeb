"""The container engine: the `podman` or `docker` CLI (docs/containers.md).

Owns every engine call: always an argument list, never a shell string. A manifest entry
with `"image": "<repository>"` keeps its releases as files in STORE_DIR like a binary —
an image archive (`docker save` / OCI archive), or a registry reference
`REPO@sha256:DIGEST` published as a small text file — and installing one makes the
image `<repository>:current` (the tag the supervisor program runs), and
`<repository>:sha256-<release sha256>`, the tag by which the agent knows which release
an image is, so that every installed version stays in the engine and a rollback needs
no network. An archive is read before it is loaded (adapters/image_archive.py): one
image, no name outside the repository nor of the agent's own tags, so that loading it
moves no other image's tag; the release tag is set on the verified image ID, which the
caller records (Store.record_image_id) and `has_release` checks: a tag alone proves
nothing. It also answers which image the service's container (by its name) really
runs, and stops and removes that container when its program's stop left it running (a
PID 1 that ignores SIGTERM outlives the `podman run` client supervisor stops).
Errors become the error tree: an engine that is missing is a ConfigError, one that does
not answer in time (LOAD_TIMEOUT for a load or pull) or a registry that does not answer a
RetryableError, a store of the engine's that is full a HostFault (the engine's own
reason kept), an image that does not load or pull a DeployError.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ansible_proxy.agent.adapters.image_archive import verified_image
from ansible_proxy.errors import ConfigError, DeployError, HostFault, RetryableError
from ansible_proxy.names import IMAGE_REPOSITORY_RE, MAX_IMAGE_REPOSITORY, is_image_reference

ENGINES = ("podman", "docker")
CURRENT = "current"
TAG_PREFIX = "sha256-"
MAX_REFERENCE_FILE = 1024
LOAD_TIMEOUT = 900.0  # seconds for one load or pull of a large image (the key's default)
CALL_TIMEOUT = 60.0  # any other engine call
# `stop -t`: the grace between the stop signal and SIGKILL. Short: a container still
# running after its program stopped has had the program's stopwaitsecs already (`podman
# run` passed supervisor's signal on to it), as supervisor gives a process before SIGKILL.
STOP_SECONDS = 2
# A container name as podman and docker accept it (at most 128 characters, say we).
CONTAINER_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
_NOT_RUNNING = ("created", "configured", "exited", "stopped", "dead")


def repository_refusal(value: object) -> str | None:
    """Why `value` is not an image repository (one phrase), or None when it is one."""
    if not isinstance(value, str) or not value:
        return "image must be a repository name, e.g. localhost/web"
    if len(value) > MAX_IMAGE_REPOSITORY or IMAGE_REPOSITORY_RE.fullmatch(value) is None:
        return (
            f"image {value[:80]!r} is not a repository name ([registry[:port]/]name, lower "
            "case, no tag or digest), e.g. localhost/web"
        )
    return None


def container_refusal(value: object) -> str | None:
    """Why `value` is not a container name (one phrase), or None when it is one."""
    if isinstance(value, str) and CONTAINER_NAME_RE.fullmatch(value):
        return None
    return f"container {str(value)[:80]!r} is not a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"


@dataclass(frozen=True)
class RunningImage:
    """What the container named `container` runs: its image's ID ("" when it is not
    running), the release sha256s that image is tagged with, and another tag of it."""

    container: str
    image_id: str = ""
    releases: tuple[str, ...] = ()
    tag: str = ""

    def refusal(self, sha256: str) -> str:
        """Why this is not release `sha256` running ("" when it is)."""
        if sha256 in self.releases:
            return ""
        if not self.image_id:
            return (
                f"no container named {self.container} is running (the program must run it "
                f"with --name {self.container})"
            )
        return f"container {self.container} runs {self.describe()}, not release {sha256[:12]}"

    def describe(self, prefer: str = "") -> str:
        """How to name the image: `release 1a2b3c4d5e6f (image 5f3a…)` when it is release
        `prefer`, else `localhost/web:v1 (release …, image …)`, a tag, or its ID."""
        short = self.image_id.removeprefix("sha256:")[:12]
        if prefer and prefer in self.releases:
            return f"release {prefer[:12]} (image {short})"
        about = [f"release {sha[:12]}" for sha in self.releases[:1]] + [f"image {short}"]
        if self.tag:
            return f"{self.tag} ({', '.join(about)})"
        return f"{about[0]} ({about[1]})" if len(about) == 2 else about[0]


def release_tag(repository: str, sha256: str) -> str:
    return f"{repository}:{TAG_PREFIX}{sha256}"


def reference_in(path: Path) -> str | None:
    """The `REPO@sha256:…` a registry release's file holds, or None for an archive."""
    try:
        if path.stat().st_size > MAX_REFERENCE_FILE:
            return None
        text = path.read_bytes().decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if is_image_reference(text) else None


def choose_engine(configured: str) -> str:
    """CONTAINER_ENGINE, or the one installed (podman first); ConfigError when none is."""
    if configured:
        if configured not in ENGINES:
            raise ConfigError(f"CONTAINER_ENGINE {configured!r}: expected podman or docker")
        if shutil.which(configured) is None:
            raise ConfigError(f"CONTAINER_ENGINE {configured}: not found on PATH")
        return configured
    for engine in ENGINES:
        if shutil.which(engine) is not None:
            return engine
    raise ConfigError(
        "a manifest entry manages an image, but neither podman nor docker is installed "
        "(install one, or set CONTAINER_ENGINE)"
    )


class Engine:
    """One container engine's CLI, called with `env` (None: the agent's own environment);
    `load_timeout`: LOAD_TIMEOUT, the seconds one load or pull may take."""

    def __init__(
        self,
        command: str,
        env: Mapping[str, str] | None = None,
        load_timeout: float = LOAD_TIMEOUT,
    ) -> None:
        self.command = command
        self.env = dict(env) if env is not None else None
        self.load_timeout = load_timeout

    def _run(self, *args: str, timeout: float = CALL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        argv = [self.command, *args]
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self.env,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except FileNotFoundError:
            raise ConfigError(f"container engine {self.command!r} not found on PATH") from None
        except subprocess.TimeoutExpired:
            key = " (LOAD_TIMEOUT)" if args[0] in ("load", "pull") else ""
            raise RetryableError(
                f"{self.command} {args[0]} did not answer within {timeout:g} s{key}"
            ) from None

    def _checked(self, *args: str, timeout: float = CALL_TIMEOUT) -> str:
        result = self._run(*args, timeout=timeout)
        if result.returncode != 0:
            failed = f"{self.command} {args[0]} failed"
            disk = _line_with(result.stderr, _HOST_TROUBLE)
            if disk:  # podman load says so on a detail line, below a generic Error line
                raise HostFault(f"{failed}: {disk}")  # the reason first: reports are cut
            if args[0] == "pull" and _line_with(result.stderr, _UNREACHABLE):
                raise RetryableError(
                    f"{failed}: the registry did not answer: {_last_line(result.stderr)}"
                )
            raise DeployError(f"{failed}: {_last_line(result.stderr)}")
        return result.stdout

    def _image(self, ref: str) -> tuple[str, list[str]] | None:
        """(ID, tags) of the image `ref` names; None when the engine has no such image."""
        result = self._run("image", "inspect", "--format", "{{.Id}} {{json .RepoTags}}", ref)
        if result.returncode != 0:
            if _missing(result.stderr):
                return None
            raise RetryableError(
                f"{self.command} image inspect failed: {_last_line(result.stderr)}"
            )
        image_id, _, tags_json = result.stdout.strip().partition(" ")
        try:
            tags = json.loads(tags_json.splitlines()[0])
        except (ValueError, IndexError):
            tags = []
        return image_id_of(image_id), [str(tag) for tag in tags or []]

    def _tags(self, ref: str) -> list[str] | None:
        """The tags of the image `ref` names; None when the engine has no such image."""
        found = self._image(ref)
        return None if found is None else found[1]

    def has_release(self, repository: str, sha256: str, image_id: str) -> bool:
        """True when `<repository>:sha256-<sha256>` is the image `image_id`, the one recorded
        when the release was verified; a tag alone (planted, moved) proves nothing."""
        found = self._image(release_tag(repository, sha256)) if image_id else None
        return found is not None and found[0] == image_id

    def current(
        self,
        repository: str,
        prefer: str = "",
        recorded: Callable[[str], str] = lambda sha256: "",
    ) -> str | None:
        """The release sha256 `<repository>:current` is: one of its `sha256-…` tags whose
        recorded image ID (`recorded(sha256)`) is that image; None when there is none.
        `prefer` (the installed version) counts without a record: an older agent kept none.
        """
        found = self._image(f"{repository}:{CURRENT}")
        if found is None:
            return None
        image_id, tags = found
        shas = [
            tag.rsplit(":", 1)[1][len(TAG_PREFIX) :]
            for tag in tags
            if tag.startswith(f"{repository}:{TAG_PREFIX}")
        ]
        if prefer in shas and recorded(prefer) in ("", image_id):
            return prefer
        verified = [sha for sha in shas if recorded(sha) == image_id]
        return verified[0] if verified else None

    def load(self, repository: str, artifact: Path, sha256: str) -> str:
        """Put the release `sha256` (its verified file `artifact` in the store) in the
        engine under its release tag, `:current` untouched; its image ID. An archive is
        read first (`verified_image`) and refused before loading when it could set any
        other tag; a reference is pulled by its digest. The tag is set by image ID.
        """
        reference = reference_in(artifact)
        if reference is not None:
            self._checked("pull", "--quiet", reference, timeout=self.load_timeout)
            expected, source = reference, "pull"
        else:
            expected, source = verified_image(artifact, repository), "load"
            self._checked("load", "--input", str(artifact), timeout=self.load_timeout)
        found = self._image(expected)
        if found is None:
            raise DeployError(
                f"{self.command} {source}: image {expected[:80]} is not in the engine after it"
            )
        self._checked("tag", found[0], release_tag(repository, sha256))
        return found[0]

    def install(self, repository: str, image_id: str) -> None:
        """Make the image `image_id` (a release's, verified by `load` or `has_release`)
        `<repository>:current`: a tag set by ID, no load, no network."""
        self._checked("tag", image_id, f"{repository}:{CURRENT}")

    def remove_current(self, repository: str) -> None:
        """Untag `<repository>:current` (the release tags, and so the images, stay)."""
        result = self._run("rmi", f"{repository}:{CURRENT}")
        if result.returncode != 0 and not _missing(result.stderr):
            raise RetryableError(f"{self.command} rmi failed: {_last_line(result.stderr)}")

    def _state(self, name: str) -> tuple[str, str] | None:
        """(status, image ID) of the container `name`; None when there is none."""
        result = self._run("container", "inspect", "--format", "{{.State.Status}} {{.Image}}", name)
        if result.returncode != 0:
            if _missing(result.stderr):
                return None
            raise RetryableError(
                f"{self.command} container inspect failed: {_last_line(result.stderr)}"
            )
        status, _, image_id = result.stdout.strip().partition(" ")
        return status.lower(), image_id.strip()

    def running(self, name: str, repository: str) -> RunningImage:
        """Which image the container `name` runs, named by its tags in `repository`."""
        state = self._state(name)
        if state is None or state[0] != "running" or not state[1]:
            return RunningImage(name)
        tags = self._tags(state[1]) or []
        prefix = f"{repository}:{TAG_PREFIX}"
        releases = tuple(t[len(prefix) :] for t in tags if t.startswith(prefix))
        # A name for a person: a fixed tag says more than `:current`, which moves.
        others = sorted((t for t in tags if not t.startswith(prefix)), key=_is_current)
        return RunningImage(name, state[1], releases, others[0] if others else "")

    def remove_container(self, name: str) -> bool:
        """Stop (`stop -t STOP_SECONDS`: its stop signal, then SIGKILL) and remove the
        container `name`; True when it was still running. Nothing when there is none."""
        state = self._state(name)
        if state is None:
            return False
        running = state[0] not in _NOT_RUNNING
        if running:  # `-t`: podman's --time and docker's --timeout alike
            result = self._run(
                "stop", "-t", str(STOP_SECONDS), name, timeout=STOP_SECONDS + CALL_TIMEOUT
            )
            if result.returncode != 0 and not _missing(result.stderr):
                raise RetryableError(f"{self.command} stop failed: {_last_line(result.stderr)}")
        result = self._run("rm", "--force", name)  # `--rm` may have removed it meanwhile
        if result.returncode != 0 and not _missing(result.stderr):
            raise RetryableError(f"{self.command} rm failed: {_last_line(result.stderr)}")
        return running


def image_id_of(text: str) -> str:
    """An image ID as `sha256:<hex>`: podman prints the bare hex, docker the prefixed one
    (both accept it wherever a reference goes)."""
    text = text.strip()
    return text if text.startswith("sha256:") else f"sha256:{text}"


def _is_current(tag: str) -> bool:
    return tag.endswith(f":{CURRENT}")


_MISSING = ("no such image", "image not known", "not found", "no such container", "no such object")


def _missing(stderr: str) -> bool:
    text = stderr.lower()
    return any(what in text for what in _MISSING)


# This host's own trouble, wherever the engine's output names it: a full or broken store.
_HOST_TROUBLE = (
    "no space left on device",
    "disk quota exceeded",
    "read-only file system",
    "input/output error",
)
# A registry (or the way to it) that did not answer: the next tick pulls again.
_UNREACHABLE = (
    "connection refused",
    "connection reset",
    "no such host",
    "no route to host",
    "network is unreachable",
    "i/o timeout",
    "tls handshake timeout",
    "temporary failure in name resolution",
    "server misbehaving",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway timeout",
    "429 too many requests",
    "toomanyrequests",
)


def _line_with(text: str, phrases: tuple[str, ...]) -> str:
    """`phrase (where)` for the last line of `text` naming one of `phrases` ("" when none
    does): the phrase first, then that line without its list marker, its start cut when
    long (podman names the file last)."""
    for raw in reversed(text.strip().splitlines()):
        line = raw.strip().removeprefix("* ").strip()
        found = next((phrase for phrase in phrases if phrase in line.lower()), None)
        if found is not None:
            where = line if len(line) <= 200 else "…" + line[-199:]
            return f"{found} ({where})"
    return ""


def _last_line(text: str) -> str:
    """The engine's reason: its last `Error: …` line (podman load lists a detail line per
    format it tried after it: the last of those names only the last format), else the
    last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    if errors:
        return errors[-1][len("Error: ") :].rstrip(":")[:300]
    return (lines[-1] if lines else "no message")[:300]
