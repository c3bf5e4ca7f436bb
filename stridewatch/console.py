"""The live console: one row per athlete, the latest link events, a summary at the end."""

from __future__ import annotations

import collections
import dataclasses
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ingest.collector import SensorCounters
from ingest.records import (
    BatteryReading,
    Contact,
    HeartRateReading,
    LinkEvent,
    LinkState,
    Reading,
    SensorInfo,
    StrideReading,
)

_BAD_STATES = {
    LinkState.DISCONNECTED,
    LinkState.CONNECT_FAILED,
    LinkState.SILENT,
    LinkState.NO_CONTACT,
    LinkState.RR_GAP,
    LinkState.BAD_FRAME,
}


def pace_text(speed_mps: float | None) -> str:
    """Pace as min:ss per km; "-" when standing (pace is infinite)."""
    if speed_mps is None or speed_mps < 0.3:
        return "-"
    seconds = round(1000.0 / speed_mps)
    return f"{seconds // 60}:{seconds % 60:02d} /km"


@dataclasses.dataclass
class _Row:
    heart_rate_bpm: int | None = None
    contact: Contact | None = None
    last_rr_ms: float | None = None
    cadence_per_min: int | None = None
    step_length_m: float | None = None
    speed_mps: float | None = None
    distance_m: float | None = None
    battery: dict[str, int] = dataclasses.field(default_factory=dict)
    link: dict[str, str] = dataclasses.field(default_factory=dict)


class LiveView:
    """A rich live table fed with records; use as a context manager around the run."""

    def __init__(self, title: str, console: Console | None = None) -> None:
        self.console = console or Console()
        self.title = title
        self.rows: dict[str, _Row] = {}
        self.events: collections.deque[str] = collections.deque(maxlen=8)
        self._live = Live(self._render(), console=self.console, refresh_per_second=4,
                          transient=False)
        self._kinds: dict[str, str] = {}

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.update(self._render())
        self._live.__exit__(exc_type, exc, tb)

    def update(self, record: Reading) -> None:
        row = self.rows.setdefault(record.athlete, _Row())
        match record:
            case HeartRateReading():
                row.heart_rate_bpm = record.heart_rate_bpm
                row.contact = record.contact
                if record.rr_intervals_s:
                    row.last_rr_ms = record.rr_intervals_s[-1] * 1000.0
            case StrideReading():
                row.cadence_per_min = record.cadence_per_min
                row.step_length_m = record.stride_length_m
                row.speed_mps = record.speed_mps
                row.distance_m = record.total_distance_m
            case BatteryReading():
                row.battery[self._kinds.get(record.sensor, "?")] = record.level_pct
            case SensorInfo():
                self._kinds[record.sensor] = "strap" if record.kind == "heart_rate" else "pod"
            case LinkEvent():
                kind = self._kinds.get(record.sensor, "sensor")
                row.link[kind] = record.state.value
                if record.state in _BAD_STATES or record.state is LinkState.CONNECTED:
                    self.events.append(
                        f"{record.time_utc:%H:%M:%S} {record.athlete} {kind}: "
                        f"{record.state.value} {record.detail}".rstrip()
                    )
        self._live.update(self._render())

    def _render(self) -> Group:
        table = Table(title=self.title, expand=False)
        for column in ("athlete", "HR", "contact", "RR", "cadence", "length", "speed",
                       "pace", "distance", "battery", "link"):
            table.add_column(column, justify="right" if column != "athlete" else "left")
        for name, r in sorted(self.rows.items()):
            table.add_row(
                name,
                f"{r.heart_rate_bpm}" if r.heart_rate_bpm is not None else "-",
                r.contact.value if r.contact else "-",
                f"{r.last_rr_ms:.0f} ms" if r.last_rr_ms is not None else "-",
                f"{r.cadence_per_min}/min" if r.cadence_per_min is not None else "-",
                f"{r.step_length_m:.2f} m" if r.step_length_m is not None else "-",
                f"{r.speed_mps:.2f} m/s" if r.speed_mps is not None else "-",
                pace_text(r.speed_mps),
                f"{r.distance_m / 1000:.2f} km" if r.distance_m is not None else "-",
                " ".join(f"{k} {v}%" for k, v in sorted(r.battery.items())) or "-",
                " ".join(f"{k} {v}" for k, v in sorted(r.link.items())) or "-",
            )
        events = Text("\n".join(self.events) or "no link events yet", style="dim")
        return Group(table, events)

    def print_summary(self, counters: dict[str, SensorCounters], dropped: int) -> None:
        table = Table(title="sensors")
        for column in ("sensor", "frames", "bad", "connects", "failures", "drops", "silent",
                       "rr gaps"):
            table.add_column(column, justify="right")
        for address, c in sorted(counters.items()):
            table.add_row(address, str(c.frames), str(c.bad_frames), str(c.connects),
                          str(c.connect_failures), str(c.disconnects), str(c.silences),
                          str(c.rr_gaps))
        self.console.print(table)
        if dropped:
            self.console.print(f"[red]{dropped} records dropped: the consumer lagged[/red]")
