"""Which athlete a discovered sensor belongs to: by address or advertised name (DESIGN.md
"Athletes and sensors"), or a default athlete that takes every other sensor found."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ingest.records import SensorKind


@dataclasses.dataclass(frozen=True, slots=True)
class SensorAssignment:
    """One sensor of one athlete, matched by address or advertised name.

    ``address`` matches case-insensitively; ``name`` matches the advertised local name exactly.
    """

    athlete: str
    kind: SensorKind
    address: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.address is None and self.name is None:
            raise ValueError(f"sensor of {self.athlete!r} needs an address or a name")


class SensorMap:
    """Which athlete a discovered sensor belongs to.

    Args:
        assignments: explicit sensors.
        default_athlete: athlete that gets every other sensor found (single-athlete setups:
            "use whatever strap and footpod you find"); None ignores unknown sensors.
    """

    def __init__(
        self, assignments: Sequence[SensorAssignment] = (), *, default_athlete: str | None = None
    ) -> None:
        self._assignments = tuple(assignments)
        self._default = default_athlete

    def athlete_for(self, address: str, name: str | None, kind: SensorKind) -> str | None:
        """The athlete of a sensor, or None when it is not ours."""
        for a in self._assignments:
            if a.kind is not kind:
                continue
            if a.address is not None and a.address.lower() == address.lower():
                return a.athlete
            if a.name is not None and a.name == name:
                return a.athlete
        return self._default
