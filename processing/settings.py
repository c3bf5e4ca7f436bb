"""Typed settings of processing: athlete parameters and alert thresholds, with defaults.

One frozen object; the application fills it from the config file (``stridewatch.toml``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

CadenceUnit = Literal["steps", "strides"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AthleteSettings:
    """Physiology and sensors of one athlete."""

    max_hr_bpm: float = 190.0
    resting_hr_bpm: float = 55.0
    zone_bounds_pct_max: tuple[float, float, float, float] = (60.0, 70.0, 80.0, 90.0)
    """Lower bounds of zones 2..5 in % of max HR (zone 1 is below the first)."""
    hr_margin_bpm: float = 10.0
    """HR above max HR plus this margin is rejected as implausible (counted, not alerted)."""
    sex: Literal["male", "female"] = "male"
    """Selects the Banister TRIMP weighting coefficient (1.92 male, 1.67 female)."""
    sensor_priority: tuple[str, ...] = ()
    """Sensor addresses, most preferred first, when several report the same quantity."""
    cadence_unit: Mapping[str, CadenceUnit] = dataclasses.field(default_factory=dict)
    """Per-sensor override of the footpod's cadence unit (wins over detection)."""

    def __post_init__(self) -> None:
        if not 100 <= self.max_hr_bpm <= 240:
            raise ValueError(f"max_hr_bpm {self.max_hr_bpm} is not plausible (100..240)")
        if not 25 <= self.resting_hr_bpm < self.max_hr_bpm:
            raise ValueError("resting_hr_bpm must be >= 25 and below max_hr_bpm")
        bounds = self.zone_bounds_pct_max
        if list(bounds) != sorted(bounds) or not (bounds[0] > 0 and bounds[-1] < 100):
            raise ValueError("zone_bounds_pct_max must increase within 0..100")

    def zone_of(self, hr_bpm: float) -> int:
        """HR zone 1..5 (by % of max HR).

        >>> AthleteSettings().zone_of(150)  # 79 % of 190
        3
        """
        pct = 100.0 * hr_bpm / self.max_hr_bpm
        zone = 1
        for bound in self.zone_bounds_pct_max:
            if pct >= bound:
                zone += 1
        return zone


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AlertSettings:
    """Alert thresholds, hysteresis and cooldowns (DESIGN.md "Alerts")."""

    surge_rise_bpm: float = 20.0
    """HR surge: a rise of this much ..."""
    surge_window_s: float = 30.0
    """... within this window (from the window's minimum to now)."""
    surge_rearm_bpm: float = 10.0
    """Hysteresis: the surge alert re-arms once the rise falls below this."""
    ceiling_bpm: float | None = None
    """HR ceiling; None: the lower bound of zone 5 (90 % of max HR by default)."""
    ceiling_hold_s: float = 30.0
    ceiling_clear_bpm: float = 3.0
    """Hysteresis: back under the ceiling by this much before it re-arms."""
    early_surge_window_s: float = 90.0
    """Early surge: the rise in the first N s of a run segment ..."""
    early_surge_fallback_bpm: float = 35.0
    """... compared with the athlete's own history, or with this absolute rise without one."""
    early_surge_history_factor: float = 1.3
    """With history: alert when the rise exceeds the athlete's typical early rise by this factor."""
    low_readiness_ratio: float = 0.75
    """Low readiness: today's resting RMSSD below this share of the baseline."""
    sensor_lost_s: float = 10.0
    """A sensor silent or disconnected this long during a session raises sensor_lost."""
    low_battery_pct: int = 15
    cooldown_s: float = 120.0
    """Minimum time between two alerts of the same kind for the same athlete."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ProcessingSettings:
    """Everything processing needs; athletes not listed get ``default_athlete``."""

    athletes: Mapping[str, AthleteSettings] = dataclasses.field(default_factory=dict)
    default_athlete: AthleteSettings = dataclasses.field(default_factory=AthleteSettings)
    alerts: AlertSettings = dataclasses.field(default_factory=AlertSettings)
    hrv_windows_s: tuple[float, float] = (60.0, 300.0)
    dfa_window_s: float = 120.0
    failover_s: float = 3.0
    """A lower-priority sensor takes over when the preferred one was silent this long."""
    late_tolerance_s: float = 2.0
    """Readings older than the athlete's latest event time by more than this are dropped
    (counted); within it they are processed in arrival order."""

    def athlete(self, name: str) -> AthleteSettings:
        return self.athletes.get(name, self.default_athlete)
