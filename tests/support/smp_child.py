"""A laptop process uploading one image to an SMP board, for tests that SIGKILL it mid-transfer.

python -m tests.support.smp_child ADDRESS IMAGE VERSION
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from pathlib import Path

from fieldkit.domain import PayloadSource
from fieldkit.drivers.smp import SmpDriver
from fieldkit.transports.byte_stream import open_byte_stream


def main() -> None:
    address, image, version = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    payload = PayloadSource.whole_file(image, hashlib.sha256(image.read_bytes()).hexdigest(), version)
    driver = SmpDriver(address, open_byte_stream)
    try:
        print(asyncio.run(driver.transfer("app", payload, None)))
    finally:
        driver.close()


if __name__ == "__main__":
    main()
