"""Finding MCU boards on serial lines: the laptop's ports, then an SMP probe of each.

``list_local_ports`` names every serial port the laptop has, with what its
USB descriptor says (vendor and product ids, maker, serial number) and a
hint of what kind of adapter it is; a port is only a candidate. A board is
listed once it answers mcumgr SMP (its OS info and MCUmgr parameters) and
identifies itself through fieldkit's board table. (A U-Boot prompt is
recognised when its driver comes.)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import quote

from fieldkit.domain import ChargerIdentity
from fieldkit.drivers.smp import SmpDriver
from fieldkit.errors import FieldkitError, LinkLostError
from fieldkit.transports.byte_stream import DEFAULT_BAUD, PortInfo, list_local_ports, open_byte_stream

# A board answers an SMP request in milliseconds; a silent port costs this much. Generous, so a board on a
# busy laptop (or a slow USB hub) is not taken for silence.
PROBE_TIMEOUT_S: Final = 1.5
SerialOutcome = Literal["charger", "no answer", "unreachable"]


@dataclass(frozen=True)
class SerialFound:
    port: str
    outcome: SerialOutcome
    detail: str = ""
    identity: ChargerIdentity | None = None
    info: PortInfo | None = None
    baud: int = DEFAULT_BAUD

    @property
    def address(self) -> str:
        """The address an update takes for this port."""
        return f"smp+serial://{quote(self.port, safe='/:')}?baud={self.baud}"


def _probe(port: str, baud: int, info: PortInfo | None) -> SerialFound:
    found = SerialFound(port, "no answer", "", None, info, baud)
    driver = SmpDriver(found.address, open_byte_stream, answer_timeout_s=PROBE_TIMEOUT_S, attempts=1)
    try:
        identity = driver.identify_blocking()
    except LinkLostError:
        return SerialFound(port, "no answer", "no mcumgr SMP answer at this speed", None, info, baud)
    except FieldkitError as exc:
        return SerialFound(port, "unreachable", exc.message, None, info, baud)
    finally:
        driver.close()
    return SerialFound(port, "charger", "identified over mcumgr SMP", identity, info, baud)


async def discover_serial(ports: list[str], baud: int = DEFAULT_BAUD) -> list[SerialFound]:
    """Probe ``ports`` (every local port when empty) for SMP boards, a few at a time."""
    known = {info.device: info for info in list_local_ports()}
    wanted = ports or sorted(known)
    limit = asyncio.Semaphore(4)

    async def one(port: str) -> SerialFound:
        async with limit:
            return await asyncio.to_thread(_probe, port, baud, known.get(port))

    return list(await asyncio.gather(*(one(p) for p in wanted)))
