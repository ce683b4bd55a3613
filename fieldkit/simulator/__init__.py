"""Simulated chargers: a device model plus protocol front-ends."""
