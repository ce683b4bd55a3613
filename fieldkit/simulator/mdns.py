"""Announce a simulated charger's SSH endpoint over mDNS, as avahi on a real controller does."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

SERVICE_TYPE: Final = "_ssh._tcp.local."


@contextmanager
def announced(
    instance: str, port: int, address: str = "127.0.0.1", txt: dict[str, str] | None = None
) -> Iterator[None]:
    """Announce ``instance`` at ``address:port`` on the interface of ``address`` until the block ends."""
    from zeroconf import IPVersion, ServiceInfo, Zeroconf

    safe = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in instance)[:63] or "charger"
    info = ServiceInfo(
        SERVICE_TYPE,
        f"{safe}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton(address)],
        port=port,
        properties=txt or {},
        server=f"{safe}.local.",
    )
    zc = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
    try:
        zc.register_service(info)
        yield
    finally:
        zc.unregister_service(info)
        zc.close()
