"""Scanners per transport that turn candidates into identified chargers."""
