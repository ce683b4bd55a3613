"""Job states and the transitions allowed between them.

Names follow OCPP 2.0.1 FirmwareStatusEnum where one fits (Downloading,
Downloaded, SignatureVerified, Installing, InstallRebooting, Installed,
InstallationFailed, InstallVerificationFailed) so a back office reconciles
local updates with OTA ones; fieldkit adds Planned, Refused, Committed,
RollingBack and RolledBack. A state means "this step has begun": it is
journaled before the step acts, so a resumed job knows what may be half done.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class JobState(StrEnum):
    PLANNED = "Planned"
    REFUSED = "Refused"
    DOWNLOADING = "Downloading"
    DOWNLOADED = "Downloaded"
    SIGNATURE_VERIFIED = "SignatureVerified"
    INSTALLING = "Installing"
    INSTALL_REBOOTING = "InstallRebooting"
    INSTALLED = "Installed"
    COMMITTED = "Committed"
    INSTALLATION_FAILED = "InstallationFailed"
    INSTALL_VERIFICATION_FAILED = "InstallVerificationFailed"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"


S = JobState
TRANSITIONS: Final[dict[JobState, frozenset[JobState]]] = {
    S.PLANNED: frozenset({S.DOWNLOADING, S.REFUSED}),
    S.DOWNLOADING: frozenset({S.DOWNLOADED, S.INSTALLATION_FAILED}),
    S.DOWNLOADED: frozenset({S.SIGNATURE_VERIFIED, S.INSTALL_VERIFICATION_FAILED}),
    S.SIGNATURE_VERIFIED: frozenset({S.INSTALLING}),
    S.INSTALLING: frozenset({S.DOWNLOADING, S.INSTALL_REBOOTING, S.INSTALLATION_FAILED}),
    S.INSTALL_REBOOTING: frozenset({S.INSTALLED, S.INSTALLATION_FAILED}),
    S.INSTALLED: frozenset({S.COMMITTED, S.INSTALLATION_FAILED}),  # failed: the trial ended before the commit
    S.INSTALLATION_FAILED: frozenset({S.ROLLING_BACK}),
    S.INSTALL_VERIFICATION_FAILED: frozenset({S.ROLLING_BACK}),
    S.ROLLING_BACK: frozenset({S.ROLLED_BACK}),
    S.COMMITTED: frozenset(),
    S.ROLLED_BACK: frozenset(),
    S.REFUSED: frozenset(),
}
TERMINAL: Final = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


def allowed(current: JobState, target: JobState) -> bool:
    return target in TRANSITIONS[current]
