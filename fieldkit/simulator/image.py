"""Simulated firmware images: one JSON header line, then the image body.

Real images carry metadata the device checks before booting them (a RAUC
bundle manifest, an MCUboot TLV area); here it is the header line:

    {"fieldkit_sim_image": 1, "vendor": ..., "model": ..., "component": ...,
     "version": ..., "security_version": N}\\n

An image whose header is missing, unreadable or for another model or
component does not boot. An MCU board's image is an MCUboot image whose
body starts with that header line (mcuboot_image.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fieldkit.simulator.mcuboot_image import mcuboot_body_offset

MAGIC: Final = "fieldkit_sim_image"
MCUBOOT_PROBE_BYTES: Final = 32
MAX_HEADER_BYTES: Final = 4096


@dataclass(frozen=True)
class ImageHeader:
    vendor: str
    model: str
    component: str
    version: str
    security_version: int

    def to_bytes(self) -> bytes:
        document = {
            MAGIC: 1,
            "vendor": self.vendor,
            "model": self.model,
            "component": self.component,
            "version": self.version,
            "security_version": self.security_version,
        }
        return json.dumps(document, sort_keys=True).encode("ascii") + b"\n"


def read_image_header(path: Path) -> ImageHeader | None:
    """The header of the image at ``path``, or None if it has no valid one."""
    try:
        with path.open("rb") as handle:
            start = mcuboot_body_offset(handle.read(MCUBOOT_PROBE_BYTES)) or 0  # an MCU board's MCUboot image
            handle.seek(start)
            line = handle.readline(MAX_HEADER_BYTES)
        document = json.loads(line)
        if not isinstance(document, dict) or document.get(MAGIC) != 1:
            return None
        return ImageHeader(
            str(document["vendor"]),
            str(document["model"]),
            str(document["component"]),
            str(document["version"]),
            int(document["security_version"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
