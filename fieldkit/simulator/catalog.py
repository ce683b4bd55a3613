"""The simulated charger models: what the demo and the tests can talk to.

Plain data, shared by the demo's bundle generator and the simulator itself,
so a demo bundle "for VQ-AC22 rev C" is for a charger the simulator can be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class SimulatedComponent:
    name: str
    target: str
    install_method: str
    metrology_relevant: bool = False


@dataclass(frozen=True)
class SimulatedModel:
    vendor: str
    model: str
    hardware_revisions: tuple[str, ...]
    transport: str
    components: tuple[SimulatedComponent, ...]
    installed_version: str
    security_version_floor: int

    @property
    def slug(self) -> str:
        return f"{self.vendor}-{self.model}".lower()


MODELS: Final = (
    SimulatedModel(
        "Voltiq",
        "VQ-AC22",
        ("B", "C"),
        "ssh",
        (SimulatedComponent("rootfs", "rootfs", "rauc"),),
        installed_version="2.3.0",
        security_version_floor=3,
    ),
    SimulatedModel(
        "Voltiq",
        "VQ-DC150",
        ("A",),
        "ssh",
        (
            SimulatedComponent("rootfs", "rootfs", "rauc"),
            SimulatedComponent("meter", "meter-fw", "script", metrology_relevant=True),
        ),
        installed_version="4.1.0",
        security_version_floor=5,
    ),
    SimulatedModel(
        "Kestrel",
        "KS-DC60",
        ("1", "2"),
        "ssh",
        (SimulatedComponent("rootfs", "rootfs", "swupdate"),),
        installed_version="3.1.0",
        security_version_floor=2,
    ),
    SimulatedModel(
        "Nordvolt",
        "NV-AC7",
        ("2",),
        "ssh",
        (SimulatedComponent("rootfs", "rootfs", "mender"),),
        installed_version="1.4.0",
        security_version_floor=1,
    ),
    SimulatedModel(
        "Ampero",
        "AMP-WB7",
        ("r2",),
        "serial-smp",
        (SimulatedComponent("app", "mcu-app", "mcumgr-smp"),),
        installed_version="1.8.0",
        security_version_floor=2,
    ),
)


def model_named(name: str) -> SimulatedModel:
    for model in MODELS:
        if model.model == name:
            return model
    known = ", ".join(m.model for m in MODELS)
    raise KeyError(f"no simulated model {name!r}; known: {known}")
