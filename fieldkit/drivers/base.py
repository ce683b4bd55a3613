"""What every driver offers the update engine, whatever the protocol underneath.

Methods are async: drivers run their blocking transports in threads. Every
method either does what it says or raises a FieldkitError (TransportError
for the link, DeviceRefusedError for the charger saying no). A driver
declares what it can do in ``capabilities`` and the engine branches on that:
a driver never pretends to a verification, trial boot or health check it
does not have. ``tests/drivers/contract.py`` is the suite every driver passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from fieldkit.domain import (
    Capabilities,
    ChargerIdentity,
    HealthCallback,
    HealthReport,
    PayloadSource,
    ProgressCallback,
)


class Driver(Protocol):
    @property
    def capabilities(self) -> Capabilities: ...

    async def identify(self) -> ChargerIdentity: ...

    async def installed(self, component: str, version: str) -> bool | None:
        """Has ``version`` of ``component`` been installed by this job already?

        Installed means: waiting for its boot or on trial where the charger
        has trial boots; written where it has none. Asked when a job resumes
        in Installing, so a second install does not undo the first.

        None: the charger cannot tell; the engine then installs again, which
        every driver must allow for an image already installed.
        """
        ...

    async def transfer(self, component: str, payload: PayloadSource, on_progress: ProgressCallback | None) -> int:
        """Stage ``image`` on the charger, resuming a verified partial copy; returns bytes sent."""
        ...

    async def verify(self, component: str, payload: PayloadSource) -> str:
        """Prove the transferred image is ``payload`` (its ``sha256``), the way ``capabilities.verification``
        says; returns what was checked, for the audit trail. DeviceRefusedError when it is not.

        With ``Verification.STREAMED_HASH`` (no read-back), the laptop's copy is what is hashed: the payload
        streamed from the bundle, hashed again on a resume."""
        ...

    async def activate(self, component: str, sha256: str, install_method: str) -> None:
        """Install the staged, verified image through the updater ``install_method`` names."""
        ...

    async def reboot(self) -> str | None:
        """Restart the charger into what was installed; returns once it has restarted.

        Returns the address the job continues at when that changed (a
        recovery bootloader that hands over to the Linux system it just
        wrote); None to continue here.
        """
        ...

    async def health(
        self, expected_versions: dict[str, str], baseline_meter_wh: int, on_poll: HealthCallback | None = None
    ) -> HealthReport:
        """Only called when ``capabilities.health_check``. ``on_poll`` is told each interim reading (what the
        technician sees while the charger proves itself) and stops the check when it returns False."""
        ...

    async def commit(self, install_methods: Mapping[str, str], expected_versions: Mapping[str, str]) -> None:
        """Make the running trial images permanent; ``install_methods`` maps component -> install method.

        Only called when ``capabilities.trial_boot``.

        Only an image running the expected version is committed. Safe to
        repeat: a component already committed is left alone (a resumed job may
        commit twice).
        """
        ...

    async def rollback(
        self, install_methods: Mapping[str, str], previous_versions: Mapping[str, str | None] | None = None
    ) -> str:
        """Go back to the last known good image of these components; returns what was done.

        ``previous_versions`` are what the charger ran before the job (None:
        no job is known). Never marks a good image bad: an install that has
        not booted is abandoned by making the running slot primary again; a
        running new image is marked bad only while the other slot is good.
        With nothing pending, nothing changes (DeviceRefusedError for a
        rollback asked for by hand).
        """
        ...

    async def discard(self, sha256s: Sequence[str]) -> None:
        """Remove what was staged on the charger for these images once a job has ended.

        Chargers keep staged images on small flash; a finished job must not
        leave hundreds of MiB behind. Safe to repeat; nothing to do for a
        driver that writes straight into a slot.
        """
        ...

    def close(self) -> None:
        """Let go of the link; safe to call twice, and after the link was lost."""
        ...
