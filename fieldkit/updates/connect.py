"""The update layer's way to reach a charger: the driver registry, for the CLI and the TUI."""

from fieldkit.drivers.registry import driver_for, known_hosts_path

__all__ = ["driver_for", "known_hosts_path"]
