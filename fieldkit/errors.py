"""The fieldkit error tree.

Every error a person can meet carries a one-line message (what is wrong) and a
hint (what to do). The CLI prints exactly that and exits with ``exit_code``;
only ``--debug`` shows a traceback.
"""

from __future__ import annotations

from typing import ClassVar


class FieldkitError(Exception):
    """Base of every error fieldkit raises on purpose."""

    exit_code: ClassVar[int] = 1
    default_hint: ClassVar[str] = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def one_line(self) -> str:
        """The message and hint as one line, for a terminal or a log."""
        text = " ".join(self.message.split())
        if self.hint:
            text = f"{text} — {' '.join(self.hint.split())}"
        return text


class UsageError(FieldkitError):
    """The command line or an input file is not what fieldkit expects."""

    exit_code = 2


class ConfigError(FieldkitError):
    """The settings file cannot be read or holds a value out of range."""

    exit_code = 2
    default_hint = "fix the settings file or delete it to return to the defaults"


class KeyFileError(FieldkitError):
    """A key file is missing, unreadable, or the passphrase is wrong."""

    exit_code = 2


class BundleRejectedError(FieldkitError):
    """A bundle failed one verification check.

    ``check`` names the verification step (``container``, ``signatures``...),
    ``code`` the precise reason, stable for scripts and tests.
    """

    exit_code = 3

    def __init__(self, check: str, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.check = check
        self.code = code


class TrustStoreError(FieldkitError):
    """The trust store is missing, corrupt, or an update to it was refused."""

    exit_code = 4


class BundleBuildError(FieldkitError):
    """A bundle could not be created or signed from the given inputs."""

    exit_code = 2


class TransportError(FieldkitError):
    """A link to a charger failed; subclasses say how."""

    exit_code = 10


class HostUnreachableError(TransportError):
    default_hint = "check the cable or network, the address and the port, and that the charger is powered"


class AuthenticationFailedError(TransportError):
    default_hint = "check the user and the key (--ssh-key) the charger expects"


class HostKeyUnknownError(TransportError):
    """First contact: the host key is not pinned yet. Carries the fingerprint to show."""

    def __init__(self, message: str, fingerprint: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.fingerprint = fingerprint


class HostKeyChangedError(TransportError):
    default_hint = (
        "the charger's identity changed since it was pinned: do not proceed unless you know why "
        "(controller replaced or re-flashed); then remove its entry from the known-hosts file"
    )


class LinkLostError(TransportError):
    default_hint = "the link dropped; reconnect and resume, nothing is lost"


class CommandTimeoutError(TransportError):
    default_hint = "the charger did not answer in time; check it is not busy, then retry"


class DeviceRefusedError(FieldkitError):
    """The charger refused an operation (its updater said no); the message carries its answer."""

    exit_code = 11
    default_hint = "the charger's answer is in the audit entry; nothing was activated"
