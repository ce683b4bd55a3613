"""SSH discovery: explicit hosts and CIDR ranges, probed, then identified by the driver.

A range is scanned with bounded concurrency (a TCP connect to the SSH port
with a short timeout); an open port is only a candidate. It becomes a charger
once the linux_ssh driver identifies it, and that needs its host key pinned:
an unknown key is reported with its fingerprint, never accepted silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from fieldkit.config import Settings
from fieldkit.domain import ChargerIdentity
from fieldkit.drivers.base import Driver
from fieldkit.drivers.registry import DriverOptions, driver_for
from fieldkit.errors import (
    AuthenticationFailedError,
    DeviceRefusedError,
    HostKeyChangedError,
    HostKeyUnknownError,
    TransportError,
    UsageError,
)

MAX_SCAN_HOSTS: Final = 1024
MAX_PORT: Final = 65535
MAX_HOST_CHARS: Final = 253
HOST_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
PROBE_TIMEOUT_S: Final = 1.5
CONCURRENT_PROBES: Final = 64
CONCURRENT_IDENTIFY: Final = 8

Outcome = Literal[
    "charger", "closed", "host-key-unknown", "host-key-changed", "auth-failed", "not-a-charger", "unreachable"
]


@dataclass(frozen=True)
class Candidate:
    host: str
    port: int

    def ssh_address(self, user: str) -> str:
        """The charger address an update takes (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh://{user}@{host}:{self.port}"


@dataclass(frozen=True)
class Discovered:
    candidate: Candidate
    outcome: Outcome
    detail: str = ""
    identity: ChargerIdentity | None = None

    @property
    def address(self) -> str:
        return f"{self.candidate.host}:{self.candidate.port}"


def expand(targets: list[str], default_port: int) -> list[Candidate]:
    """HOST, HOST:PORT, [IPv6]:PORT or a CIDR range, into host/port candidates (ranges bounded)."""
    candidates: list[Candidate] = []
    for target in targets:
        host, port = target, default_port
        if target.startswith("["):
            host, _, rest = target[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else default_port
        elif target.count(":") == 1:
            host, _, port_text = target.partition(":")
            if not port_text.isdigit():
                raise UsageError(f"{target!r}: the port is not a number", "use HOST:PORT")
            port = int(port_text)
        if not 1 <= port <= MAX_PORT:
            raise UsageError(f"{target!r}: port {port} is out of range", f"a TCP port is 1 to {MAX_PORT}")
        if "/" in host:
            try:
                network = ipaddress.ip_network(host, strict=False)
            except ValueError as exc:
                raise UsageError(f"{target!r} is not a CIDR range", "e.g. 192.0.2.0/24") from exc
            if network.num_addresses > MAX_SCAN_HOSTS:
                raise UsageError(
                    f"{target} has {network.num_addresses} addresses, more than {MAX_SCAN_HOSTS}",
                    "scan a smaller range (at most a /22)",
                )
            hosts = list(network.hosts()) or [network.network_address]
            candidates.extend(Candidate(str(address), port) for address in hosts)
        else:
            if not _valid_host(host):
                raise UsageError(f"{target!r} is not a host name or IP address", "e.g. 192.0.2.10, charger-07.local")
            candidates.append(Candidate(host, port))
    return candidates


def _valid_host(host: str) -> bool:
    """An IP address, or a DNS name: dot-separated labels of 1-63 letters, digits and hyphens, 253 in all."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return 0 < len(host) <= MAX_HOST_CHARS and all(HOST_LABEL.fullmatch(label) for label in host.split("."))
    return True


async def _port_open(candidate: Candidate, limit: asyncio.Semaphore) -> bool:
    async with limit:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(candidate.host, candidate.port), PROBE_TIMEOUT_S)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True


async def discover(
    targets: list[str],
    driver_for: Callable[[Candidate], Driver],
    default_port: int = 22,
) -> list[Discovered]:
    """Probe every candidate, identify the open ones; results in the order given."""
    candidates = expand(targets, default_port)
    probes = asyncio.Semaphore(CONCURRENT_PROBES)
    open_ports = await asyncio.gather(*(_port_open(c, probes) for c in candidates))
    identify_limit = asyncio.Semaphore(CONCURRENT_IDENTIFY)
    explicit = {(c.host, c.port) for t in targets if "/" not in t for c in expand([t], default_port)}

    async def identify(candidate: Candidate, is_open: bool) -> Discovered | None:
        if not is_open:
            # A closed port in a scanned range is noise; for a host asked for by name it is the answer.
            return (
                Discovered(candidate, "closed", "no SSH service answered")
                if (candidate.host, candidate.port) in explicit
                else None
            )
        async with identify_limit:
            driver = driver_for(candidate)
            try:
                identity = await driver.identify()
            except HostKeyUnknownError as exc:
                return Discovered(
                    candidate, "host-key-unknown",
                    f"host key {exc.fingerprint} not pinned yet: compare it with the charger's label, then pass "
                    "--accept-new-host-key",
                )  # fmt: skip
            except HostKeyChangedError as exc:
                return Discovered(candidate, "host-key-changed", exc.message)
            except AuthenticationFailedError as exc:
                return Discovered(candidate, "auth-failed", f"{exc.message}: {exc.hint}")
            except DeviceRefusedError as exc:
                return Discovered(candidate, "not-a-charger", exc.message[:200])
            except TransportError as exc:
                return Discovered(candidate, "unreachable", exc.message)
            finally:
                driver.close()
        return Discovered(candidate, "charger", "identified", identity)

    results = await asyncio.gather(*(identify(c, o) for c, o in zip(candidates, open_ports, strict=True)))
    return [r for r in results if r is not None]


async def discover_with_drivers(
    targets: list[str], settings: Settings, user: str, options: DriverOptions, default_port: int = 22
) -> list[Discovered]:
    """Discovery with the same drivers an update uses, logging in as ``user``."""

    def factory(candidate: Candidate) -> Driver:
        return driver_for(candidate.ssh_address(user), settings, options)

    return await discover(targets, factory, default_port)


def discover_chargers(
    targets: list[str],
    settings: Settings,
    user: str,
    default_port: int,
    ssh_key: Path | None = None,
    accept_new_host_key: bool = False,
) -> list[Discovered]:
    """``discover_with_drivers`` for a caller without an event loop (the CLI)."""
    options = DriverOptions(ssh_key, accept_new_host_key)
    return asyncio.run(discover_with_drivers(targets, settings, user, options, default_port))
