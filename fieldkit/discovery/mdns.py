"""mDNS/DNS-SD browsing: Linux chargers that announce their SSH service on the site network.

Embedded Linux controllers commonly run avahi (or systemd-resolved) and
announce ``_ssh._tcp``; some vendors add their own service type. A browse
collects what answers within a bounded time; each announcement is only a
candidate (host and port) for the same probe-and-identify path as an
explicit host, so nothing becomes a charger without identifying itself.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Sequence
from typing import Any, Final

from fieldkit.discovery.ssh import Candidate
from fieldkit.errors import FieldkitError

SERVICE_TYPES: Final = ("_ssh._tcp.local.",)
DEFAULT_BROWSE_S: Final = 3.0
MAX_BROWSE_S: Final = 60.0
MAX_SERVICES: Final = 1024  # a hostile or huge network cannot make the browse unbounded
RESOLVE_TIMEOUT_MS: Final = 1500


class MdnsError(FieldkitError):
    exit_code = 10
    default_hint = "check that this laptop is on the site network, or pass --ssh HOST instead"


def browse(
    duration_s: float = DEFAULT_BROWSE_S,
    interfaces: Sequence[str] | None = None,
    service_types: Sequence[str] = SERVICE_TYPES,
) -> list[Candidate]:
    """Every service of ``service_types`` announced within ``duration_s``, as host/port candidates.

    ``interfaces`` are local IPv4 addresses to browse on (all interfaces by default).
    """
    from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, ServiceListener, Zeroconf

    duration_s = min(max(duration_s, 0.1), MAX_BROWSE_S)
    names: dict[tuple[str, str], None] = {}
    lock = threading.Lock()

    class Collector(ServiceListener):
        def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            with lock:
                if len(names) < MAX_SERVICES:
                    names[(type_, name)] = None

        def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            self.add_service(zc, type_, name)

        def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            return None

    try:
        zc = Zeroconf(interfaces=list(interfaces) if interfaces else InterfaceChoice.All, ip_version=IPVersion.V4Only)
    except OSError as exc:
        raise MdnsError(f"cannot browse mDNS: {exc}") from exc
    try:
        browsers: list[Any] = [ServiceBrowser(zc, service_type, Collector()) for service_type in service_types]
        time.sleep(duration_s)
        for browser in browsers:
            browser.cancel()
        with lock:
            found = list(names)
        candidates: dict[Candidate, None] = {}
        for service_type, name in found:
            info = zc.get_service_info(service_type, name, timeout=RESOLVE_TIMEOUT_MS)
            if info is None or not info.port:
                continue
            for address in info.parsed_addresses(IPVersion.V4Only):
                if _usable(address):
                    candidates[Candidate(address, int(info.port))] = None
        return list(candidates)
    finally:
        zc.close()


def _usable(address: str) -> bool:
    """Announced addresses are hearsay: only unicast IPv4 ones are probed."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not (parsed.is_multicast or parsed.is_unspecified or parsed.is_reserved)
