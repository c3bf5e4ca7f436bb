"""Workout definitions for the virtual athlete: data (TOML), not code.

A workout is a list of phases the virtual athlete goes through in order. Each phase is one
``[[phase]]`` table in a TOML file packaged under ``ingest/virtual/workouts/``:

.. code-block:: toml

    name = "morning-5k"
    description = "2 km power-walk, 1 km run 4:00 → 3:30 /km, 2 km walk back"

    [[phase]]
    kind = "walk"              # stand | walk | run | sprint
    distance_m = 2000          # or duration_s (exactly one of the two)
    speed_kmh = 6.0            # or speed_mps, or pace_min_per_km ("4:00" or 4.0)

    [[phase]]
    kind = "run"
    distance_m = 1000
    pace_min_per_km = ["4:00", "3:30"]   # [start, end]: linear ramp over the phase

    [[phase]]
    kind = "sprint"
    distance_m = 30
    accelerate = true          # from the current speed (normally standstill) toward the peak
    peak_speed_mps = 6.2       # asymptote of the exponential approach

A ramp (``[start, end]``) is linear in the phase's own measure: over distance for a
``distance_m`` phase, over time for a ``duration_s`` phase. A ``stand`` phase has a duration and
no speed. Speeds are stored in m/s whatever unit the file used, so the model never converts.

Loading is pure apart from reading the packaged files, and every problem in a file raises one
:class:`WorkoutError` naming the workout, the phase and what is wrong.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final, Literal, cast

from ingest.errors import IngestError

PhaseKind = Literal["stand", "walk", "run", "sprint"]
"""What the athlete does in a phase; also the ground-truth segment kind."""

PHASE_KINDS: Final[tuple[PhaseKind, ...]] = ("stand", "walk", "run", "sprint")

_PACKAGE: Final = __name__.rpartition(".")[0]
_WORKOUT_DIR: Final = "workouts"
_SPEED_KEYS: Final = ("speed_mps", "speed_kmh", "pace_min_per_km")
_PHASE_KEYS: Final = frozenset(
    {"kind", "duration_s", "distance_m", "accelerate", "peak_speed_mps", *_SPEED_KEYS}
)
_TOP_KEYS: Final = frozenset({"name", "description", "phase"})
# Nobody walks, runs or sprints outside this band; a value outside it is a typo in the file
# (km/h written as m/s, pace in seconds), so it is rejected instead of simulated.
_MIN_MOVING_SPEED_MPS: Final = 0.3
_MAX_SPEED_MPS: Final = 12.0


class WorkoutError(IngestError, ValueError):
    """A workout file that cannot be used.

    Attributes:
        workout: the workout's name (file stem).
        phase: 0-based index of the offending phase, or ``None`` for file-level problems.
        reason: what is wrong, in words.
    """

    def __init__(self, workout: str, reason: str, phase: int | None = None) -> None:
        self.workout = workout
        self.phase = phase
        self.reason = reason
        where = f"workout {workout!r}" + ("" if phase is None else f", phase {phase}")
        super().__init__(f"{where}: {reason}")


class UnknownWorkoutError(WorkoutError):
    """A workout name that is not packaged; ``valid`` lists the names that are."""

    def __init__(self, workout: str, valid: list[str]) -> None:
        self.valid = tuple(valid)
        super().__init__(workout, f"no such workout; valid names: {', '.join(valid)}")


_Fail = Callable[[str], WorkoutError]


@dataclass(frozen=True, slots=True)
class Phase:
    """One step of a workout, with speeds already converted to m/s.

    Attributes:
        kind: stand, walk, run or sprint (the ground-truth segment kind).
        duration_s: length of the phase in seconds, or ``None`` if it is given by distance.
        distance_m: length of the phase in metres, or ``None`` if it is given by duration.
        speed_start_mps: target speed at the start of the phase (m/s); 0 for ``stand``.
        speed_end_mps: target speed at the end (m/s); equal to the start for a steady phase.
        accelerate: if true, the athlete accelerates toward ``speed_start_mps`` (the peak) with
            the model's acceleration time constant, as in a start from standstill.
    """

    kind: PhaseKind
    duration_s: float | None
    distance_m: float | None
    speed_start_mps: float
    speed_end_mps: float
    accelerate: bool = False

    @property
    def peak_speed_mps(self) -> float:
        """Highest target speed of the phase (m/s)."""
        return max(self.speed_start_mps, self.speed_end_mps)

    def target_speed_mps(self, progress: float) -> float:
        """Target speed (m/s) at ``progress`` ∈ [0, 1] of the phase (linear ramp)."""
        p = min(max(progress, 0.0), 1.0)
        return self.speed_start_mps + (self.speed_end_mps - self.speed_start_mps) * p


@dataclass(frozen=True, slots=True)
class Workout:
    """A named, ordered list of phases.

    Attributes:
        name: the workout's name (file stem, e.g. ``"morning-5k"``).
        description: one line for humans.
        phases: the phases, in order.
    """

    name: str
    description: str
    phases: tuple[Phase, ...]

    @property
    def planned_distance_m(self) -> float:
        """Sum of the distance-defined phases (m); duration phases add what they cover."""
        return sum(p.distance_m or 0.0 for p in self.phases)


def workout_names() -> list[str]:
    """Names of the packaged workouts, sorted (the TOML file stems)."""
    root = files(_PACKAGE).joinpath(_WORKOUT_DIR)
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in root.iterdir()
        if entry.is_file() and entry.name.endswith(".toml")
    )


def load_workout(name: str) -> Workout:
    """Load a packaged workout by name.

    Raises:
        UnknownWorkoutError: ``name`` is not packaged; the message lists the valid names.
        WorkoutError: the file is not valid TOML or describes an impossible workout.
    """
    valid = workout_names()
    if name not in valid:
        raise UnknownWorkoutError(name, valid)
    text = files(_PACKAGE).joinpath(_WORKOUT_DIR, f"{name}.toml").read_text(encoding="utf-8")
    return workout_from_toml(text, name=name)


def workout_from_toml(text: str, *, name: str) -> Workout:
    """Parse and validate one workout from TOML text (what :func:`load_workout` reads).

    Args:
        text: the TOML document.
        name: the workout's name, used in errors and when the file has no ``name`` key.

    Raises:
        WorkoutError: invalid TOML, unknown keys, or an impossible phase.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WorkoutError(name, f"invalid TOML: {exc}") from exc
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise WorkoutError(name, f"unknown keys {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    declared = doc.get("name", name)
    if declared != name:
        raise WorkoutError(name, f"file declares name {declared!r}, expected {name!r}")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise WorkoutError(name, "description must be a string")
    raw_phases = doc.get("phase")
    if not isinstance(raw_phases, list) or not raw_phases:
        raise WorkoutError(name, "needs at least one [[phase]] table")
    phases = tuple(_parse_phase(name, i, raw) for i, raw in enumerate(raw_phases))
    return Workout(name=name, description=description, phases=phases)


def _parse_phase(workout: str, index: int, raw: object) -> Phase:
    def fail(reason: str) -> WorkoutError:
        return WorkoutError(workout, reason, phase=index)

    if not isinstance(raw, dict):
        raise fail("a phase must be a table")
    table = cast(dict[str, Any], raw)
    unknown = set(table) - _PHASE_KEYS
    if unknown:
        raise fail(f"unknown keys {sorted(unknown)}; allowed: {sorted(_PHASE_KEYS)}")
    kind = table.get("kind")
    if kind not in PHASE_KINDS:
        raise fail(f"kind must be one of {', '.join(PHASE_KINDS)}, got {kind!r}")

    duration_s = _positive(table, "duration_s", fail)
    distance_m = _positive(table, "distance_m", fail)
    if (duration_s is None) == (distance_m is None):
        raise fail("give exactly one of duration_s or distance_m")

    accelerate = table.get("accelerate", False)
    if not isinstance(accelerate, bool):
        raise fail("accelerate must be true or false")
    speed_keys = [k for k in _SPEED_KEYS if k in table]

    if kind == "stand":
        if distance_m is not None or speed_keys or accelerate or "peak_speed_mps" in table:
            raise fail("a stand phase takes only duration_s")
        return Phase(cast(PhaseKind, kind), duration_s, None, 0.0, 0.0)

    if accelerate:
        if speed_keys:
            raise fail(f"an accelerate phase takes peak_speed_mps, not {speed_keys}")
        peak = _positive(table, "peak_speed_mps", fail)
        if peak is None:
            raise fail("an accelerate phase needs peak_speed_mps")
        _check_speed(peak, fail)
        return Phase(cast(PhaseKind, kind), duration_s, distance_m, peak, peak, accelerate=True)

    if "peak_speed_mps" in table:
        raise fail("peak_speed_mps is only for accelerate = true phases")
    if len(speed_keys) != 1:
        raise fail(f"give exactly one of {', '.join(_SPEED_KEYS)} (got {speed_keys or 'none'})")
    key = speed_keys[0]
    start, end = _speed_pair(table[key], key, fail)
    for v in (start, end):
        _check_speed(v, fail)
    return Phase(cast(PhaseKind, kind), duration_s, distance_m, start, end)


def _positive(table: dict[str, Any], key: str, fail: _Fail) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise fail(f"{key} must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise fail(f"{key} must be finite")
    return float(value)


def _speed_pair(value: object, key: str, fail: _Fail) -> tuple[float, float]:
    if isinstance(value, list):
        if len(value) != 2:
            raise fail(f"{key} as a list must be [start, end], got {value!r}")
        return _to_mps(value[0], key, fail), _to_mps(value[1], key, fail)
    v = _to_mps(value, key, fail)
    return v, v


def _to_mps(value: object, key: str, fail: _Fail) -> float:
    """Convert one speed or pace value to m/s."""
    if key == "pace_min_per_km":
        minutes = _pace_minutes(value, fail)
        return 1000.0 / (minutes * 60.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise fail(f"{key} must be a positive number, got {value!r}")
    return float(value) / 3.6 if key == "speed_kmh" else float(value)


def _pace_minutes(value: object, fail: _Fail) -> float:
    """A pace as ``"m:ss"`` or decimal minutes per km, in minutes."""
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit():
            raise fail(f"pace must look like '4:30', got {value!r}")
        minutes, seconds = int(parts[0]), int(parts[1])
        if seconds >= 60:
            raise fail(f"pace seconds must be < 60, got {value!r}")
        total = minutes + seconds / 60.0
    elif isinstance(value, int | float) and not isinstance(value, bool):
        total = float(value)
    else:
        raise fail(f"pace must be 'm:ss' or minutes, got {value!r}")
    if not total > 0:
        raise fail(f"pace must be positive, got {value!r}")
    return total


def _check_speed(speed_mps: float, fail: _Fail) -> None:
    if not _MIN_MOVING_SPEED_MPS <= speed_mps <= _MAX_SPEED_MPS:
        raise fail(
            f"speed {speed_mps:.2f} m/s is outside {_MIN_MOVING_SPEED_MPS}-{_MAX_SPEED_MPS} m/s"
            " (km/h written as m/s?)"
        )
