"""client/causes.py: every error class of the host side has its cause, and an error raised
from another of ours takes that one's.

The table below names every exception class the agent, the inspector and the cluster
proxy define: a new class fails `test_every_error_class_of_the_host_side_has_a_cause`
until someone decides whose failure it tells.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import ansible_proxy
from ansible_proxy.agent.switch import ImageNotStaged
from ansible_proxy.agent.upgrade import DeployFailed
from ansible_proxy.client.causes import (
    CAUSES,
    HOST,
    INSPECTOR_VERDICT,
    KNOWN_BAD,
    PLAYBOOK_OR_HEALTH,
    REFUSED,
    RELEASE,
    cause_of,
)
from ansible_proxy.errors import DeployError, HostFault
from ansible_proxy.signatures import SignatureRefused, SignatureUnchecked

EXPECTED = {
    # the error tree
    "ansible_proxy.errors.AnsibleProxyError": HOST,  # raised bare by nothing: not the release
    "ansible_proxy.errors.ConfigError": HOST,
    "ansible_proxy.errors.RetryableError": HOST,
    "ansible_proxy.errors.DeployError": RELEASE,
    "ansible_proxy.errors.HostFault": HOST,
    # signatures
    "ansible_proxy.signatures.SignatureRefused": REFUSED,
    "ansible_proxy.signatures.SignatureUnchecked": HOST,  # ssh-keygen hung, a skewed clock
    # the agent
    "ansible_proxy.agent.upgrade.DeployFailed": RELEASE,  # the watch window, the self-test
    "ansible_proxy.agent.switch.ImageNotStaged": RELEASE,  # an image that does not load
    "ansible_proxy.agent.selfupdate.SelfTestUnfinished": HOST,  # exit 75, no answer
    "ansible_proxy.agent.manifest.EntryRemoved": HOST,
    "ansible_proxy.agent.adapters.image_archive.ArchiveRefused": RELEASE,
    "ansible_proxy.agent.adapters.supervisor.NoSuchProgram": HOST,
    "ansible_proxy.agent.adapters.supervisor.SupervisorUnavailable": HOST,
    "ansible_proxy.agent.adapters.supervisor.SupervisorHung": HOST,
    # what every host part shares
    "ansible_proxy.client.api.CredentialRefused": HOST,
    "ansible_proxy.client.api.NotEnrolled": HOST,
    "ansible_proxy.client.api.UnknownBin": HOST,
    "ansible_proxy.client.download.Stalled": HOST,
    "ansible_proxy.client.download.NotFound": HOST,
    "ansible_proxy.client.deadline.DeadlineExceeded": HOST,
    "ansible_proxy.client.wire.HttpError": HOST,
    "ansible_proxy.client.wire.HttpTimeout": HOST,
    # the cluster proxy
    "ansible_proxy.cluster.packages.UnsafePackage": RELEASE,
}


def _host_side_errors() -> dict[str, type[BaseException]]:
    """Every exception class defined in the host side's modules (the server's are not
    reported as progress)."""
    found: dict[str, type[BaseException]] = {}
    for module in pkgutil.walk_packages(ansible_proxy.__path__, "ansible_proxy."):
        if module.name.startswith("ansible_proxy.server"):
            continue
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.name
            ):
                found[f"{module.name}.{name}"] = value
    return found


def _bare(cls: type[BaseException]) -> BaseException:
    """An instance of `cls` whatever its constructor asks (only its class matters here)."""
    return cls.__new__(cls)


def test_every_error_class_of_the_host_side_has_a_cause() -> None:
    classes = _host_side_errors()
    assert set(classes) == set(EXPECTED), "decide the cause of each new error class here"
    for name, cls in classes.items():
        assert cause_of(_bare(cls)) == EXPECTED[name], name


def test_what_is_not_an_error_of_ours_is_the_host_s() -> None:
    for exc in (SystemExit(143), KeyboardInterrupt(), OSError(28, "No space left on device")):
        assert cause_of(exc) == HOST
    assert cause_of(ValueError("a fault of ours")) == HOST


def _raised(exc: BaseException, cause: BaseException | None) -> BaseException:
    """`exc` as `raise exc from cause` leaves it."""
    exc.__cause__ = cause
    return exc


def test_an_error_raised_from_one_of_ours_takes_its_cause() -> None:
    refused = _raised(DeployFailed("x", "signature: …"), SignatureRefused("not signed"))
    assert cause_of(refused) == REFUSED
    unchecked = _raised(DeployFailed("x", "signature: …"), SignatureUnchecked("ssh-keygen"))
    assert cause_of(unchecked) == HOST
    # An image that did not load: the engine's store full is the host's, a bad archive
    # the release's; each through two wrappers, as the upgrade raises them.
    full = _raised(ImageNotStaged("web", "a" * 64, "…"), HostFault("no space left on device"))
    assert cause_of(_raised(DeployFailed("x", "image: …"), full)) == HOST
    bad = _raised(ImageNotStaged("web", "a" * 64, "…"), DeployError("payload does not match"))
    assert cause_of(_raised(DeployFailed("x", "image: …"), bad)) == RELEASE


def test_another_library_s_error_below_ours_does_not_decide() -> None:
    # A package whose tar.gz is broken is raised from tarfile's error: still the release's.
    assert cause_of(_raised(DeployError("not a readable tar.gz"), ValueError("bad"))) == RELEASE
    assert cause_of(_raised(DeployFailed("x", "watch: BACKOFF"), None)) == RELEASE


def test_the_failures_that_are_no_exception() -> None:
    assert INSPECTOR_VERDICT == RELEASE
    assert PLAYBOOK_OR_HEALTH == RELEASE
    assert KNOWN_BAD == REFUSED
    assert set(CAUSES) == {"release", "host", "refused"}
