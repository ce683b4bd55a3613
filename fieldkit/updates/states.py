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


TRANSITIONS: Final[dict[JobState, frozenset[JobState]]] = {
    JobState.PLANNED: frozenset({JobState.DOWNLOADING, JobState.REFUSED}),
    JobState.DOWNLOADING: frozenset({JobState.DOWNLOADED, JobState.INSTALLATION_FAILED}),
    JobState.DOWNLOADED: frozenset({JobState.SIGNATURE_VERIFIED, JobState.INSTALL_VERIFICATION_FAILED}),
    JobState.SIGNATURE_VERIFIED: frozenset({JobState.INSTALLING}),
    JobState.INSTALLING: frozenset({JobState.DOWNLOADING, JobState.INSTALL_REBOOTING, JobState.INSTALLATION_FAILED}),
    JobState.INSTALL_REBOOTING: frozenset({JobState.INSTALLED, JobState.INSTALLATION_FAILED}),
    JobState.INSTALLED: frozenset(
        {JobState.COMMITTED, JobState.INSTALLATION_FAILED}
    ),  # failed: the trial ended before the commit
    JobState.INSTALLATION_FAILED: frozenset({JobState.ROLLING_BACK}),
    JobState.INSTALL_VERIFICATION_FAILED: frozenset({JobState.ROLLING_BACK}),
    JobState.ROLLING_BACK: frozenset({JobState.ROLLED_BACK}),
    JobState.COMMITTED: frozenset(),
    JobState.ROLLED_BACK: frozenset(),
    JobState.REFUSED: frozenset(),
}
TERMINAL: Final = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


def allowed(current: JobState, target: JobState) -> bool:
    return target in TRANSITIONS[current]
