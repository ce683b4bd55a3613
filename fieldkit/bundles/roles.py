"""What a trusted key may do. Kept free of heavy imports: the CLI reads it at start-up."""

from __future__ import annotations

from typing import Final, Literal, get_args

Role = Literal["trust-root", "release", "metrology", "dispatch"]
ROLES: Final[tuple[str, ...]] = get_args(Role)
