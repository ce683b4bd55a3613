"""Audit entries, hash chain and signatures, the crash-safe store, outbox sync."""
