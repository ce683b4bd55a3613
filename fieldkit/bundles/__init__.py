"""Offline signed bundles: container, manifest, trust store, verification, signing.

The normative format is offline_bundles/README.md; verify.py is the one entry
point that decides whether a bundle may touch a charger.
"""
