"""`make demo`: demo keys and bundles for the simulated chargers, and a site of chargers to update.

``pki.py`` (deterministic demo keys and trust store), ``library.py`` (the
demo bundles and their index), ``site.py`` (the simulated chargers and the
back office `fieldkit demo run` starts, in the demo's own fieldkit home).
"""

from fieldkit.demo.library import (
    DEFAULT_PAYLOAD_BYTES,
    INDEX_NAME,
    DemoBundle,
    charger_facts_for,
    init_demo,
    make_release_bundle,
    read_index,
)

__all__ = [
    "DEFAULT_PAYLOAD_BYTES",
    "INDEX_NAME",
    "DemoBundle",
    "charger_facts_for",
    "init_demo",
    "make_release_bundle",
    "read_index",
]
