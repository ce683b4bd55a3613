"""Which of a component's acceptable install methods this driver, on this charger, carries out.

A bundle lists, per transport, the methods a component may be installed with,
preferred first (offline_bundles/README.md §3). The driver declares its
transport and the methods it can carry out; a charger may name the updater
that owns the component. The first method all three allow is the one used.
"""

from __future__ import annotations

from collections.abc import Iterable

from fieldkit.bundles.manifest import Component
from fieldkit.domain import Capabilities, ChargerIdentity


def install_method_for(component: Component, capabilities: Capabilities, owner: str | None = None) -> str | None:
    """The method to install ``component`` with, or None when no acceptable one fits this driver and charger."""
    for method in component.ways.get(capabilities.transport, ()):
        if method in capabilities.install_methods and (owner is None or owner == method):
            return method
    return None


def install_methods_for(
    components: Iterable[Component], capabilities: Capabilities, identity: ChargerIdentity | None
) -> dict[str, str]:
    """Each component's method where one fits (those without one are preflight's refusal to explain)."""
    chosen: dict[str, str] = {}
    for component in components:
        info = identity.components.get(component.name) if identity is not None else None
        method = install_method_for(component, capabilities, info.install_method if info is not None else None)
        if method is not None:
            chosen[component.name] = method
    return chosen
