"""The live console: one row per athlete, alerts highlighted as they fire, a summary at the end."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ingest.records import (
    BatteryReading,
    LinkEvent,
    LinkState,
    Reading,
    SensorInfo,
    SensorKind,
)
from ingest.sensor_frames import SensorCounters
from processing.records import Alert, Metric, MetricGroup, ProcessingOutput, Segment

_SHOWN_LINK_STATES = {
    LinkState.CONNECTED,
    LinkState.DISCONNECTED,
    LinkState.CONNECT_FAILED,
    LinkState.SILENT,
    LinkState.NO_CONTACT,
    LinkState.RR_GAP,
    LinkState.BAD_FRAME,
    LinkState.ADAPTER_LOST,  # the Bluetooth adapter went away: the session stays open
    LinkState.ADAPTER_BACK,
}


def pace_text(pace_s_per_km: float | None) -> str:
    """Pace as m:ss /km; "-" when standing."""
    if pace_s_per_km is None:
        return "-"
    seconds = round(pace_s_per_km)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _num(value: object, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) else "-"


@dataclasses.dataclass
class _Row:
    hr: object = None
    zone: object = None
    rmssd: object = None
    alpha1: object = None
    alpha1_zone: object = None
    cadence: object = None
    step: object = None
    pace: float | None = None
    distance: object = None
    segment: object = None
    battery: dict[str, int] = dataclasses.field(default_factory=dict)
    link: dict[str, str] = dataclasses.field(default_factory=dict)
    alerts: int = 0


NON_TERMINAL_WIDTH = 132
"""Columns when the output is not a terminal (a log, a pipe, CI): rich would assume 80, which
truncates the live table's 13 column headers."""


def default_console() -> Console:
    """A console for stdout; as wide as the terminal, or :data:`NON_TERMINAL_WIDTH`."""
    console = Console()
    return console if console.is_terminal else Console(width=NON_TERMINAL_WIDTH)


class LiveView:
    """A rich live table fed with each record and what processing made of it."""

    def __init__(self, title: str, console: Console | None = None) -> None:
        self.console = console or default_console()
        self.title = title
        self.rows: dict[str, _Row] = {}
        self.events: collections.deque[Text] = collections.deque(maxlen=10)
        self.alerts: list[Alert] = []
        self._kinds: dict[str, str] = {}
        self._live = Live(self._render(), console=self.console, refresh_per_second=4,
                          auto_refresh=True)

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

    def _kind(self, sensor: str) -> str:
        return self._kinds.get(sensor, "sensor")

    def update(self, record: Reading, outputs: Sequence[ProcessingOutput] = ()) -> None:
        row = self.rows.setdefault(record.athlete, _Row())
        match record:
            case SensorInfo():
                self._kinds[record.sensor] = (
                    "strap" if record.kind is SensorKind.HEART_RATE else "pod"
                )
            case BatteryReading():
                row.battery[self._kind(record.sensor)] = record.level_pct
            case LinkEvent():
                kind = self._kind(record.sensor) if record.sensor in self._kinds else record.sensor
                if record.state in (LinkState.CONNECTED, LinkState.DISCONNECTED,
                                    LinkState.SILENT, LinkState.CONNECT_FAILED):
                    row.link[record.sensor] = record.state.value  # labelled at render time
                if record.state in _SHOWN_LINK_STATES:
                    self.events.append(Text(
                        f"{record.time_utc:%H:%M:%S} {record.athlete} {kind}: "
                        f"{record.state.value} {record.detail}".rstrip(),
                        style="dim",
                    ))
        for out in outputs:
            self._output(row, out)
        self._live.update(self._render())

    def _output(self, row: _Row, out: ProcessingOutput) -> None:
        if isinstance(out, Alert):
            row.alerts += 1
            self.alerts.append(out)
            style = "bold red" if out.severity != "info" else "bold yellow"
            self.events.append(
                Text(f"{out.time_utc:%H:%M:%S} ALERT {out.athlete}: {out.message}", style=style)
            )
        elif isinstance(out, Segment):
            self.events.append(Text(
                f"{out.end_utc:%H:%M:%S} {out.athlete}: {out.kind.value} segment "
                f"{out.summary.distance_m:.0f} m in {out.summary.duration_s:.0f} s",
                style="cyan",
            ))
        elif isinstance(out, Metric):
            v = out.values
            match out.group:
                case MetricGroup.HEART:
                    row.hr, row.zone = v.get("heart_rate_bpm"), v.get("zone")
                case MetricGroup.HRV:
                    row.rmssd = v.get("rmssd_60s_ms")
                    row.alpha1, row.alpha1_zone = v.get("dfa_alpha1"), v.get("alpha1_zone")
                case MetricGroup.GAIT:
                    row.cadence, row.step = v.get("cadence_spm"), v.get("step_length_m")
                    pace = v.get("pace_s_per_km")
                    row.pace = pace if isinstance(pace, float) else None
                    row.distance, row.segment = v.get("distance_m"), v.get("segment")
                case _:
                    pass

    def _render(self) -> Group:
        table = Table(title=self.title)
        for column in ("athlete", "HR", "zone", "RMSSD", "DFA α1", "cadence", "step",
                       "pace", "km", "segment", "battery", "link", "alerts"):
            table.add_column(column, justify="left" if column == "athlete" else "right")
        for name, r in sorted(self.rows.items()):
            alpha = _num(r.alpha1, ".2f")
            if isinstance(r.alpha1_zone, str):
                alpha += f" {r.alpha1_zone[:5]}"
            table.add_row(
                name,
                _num(r.hr, ".0f"),
                _num(r.zone, "d"),
                _num(r.rmssd, ".0f") + (" ms" if isinstance(r.rmssd, float) else ""),
                alpha,
                _num(r.cadence, ".0f"),
                _num(r.step, ".2f"),
                pace_text(r.pace),
                _num(r.distance / 1000 if isinstance(r.distance, float) else None, ".2f"),
                str(r.segment or "-"),
                " ".join(f"{k} {v}%" for k, v in sorted(r.battery.items())) or "-",
                " ".join(f"{self._kind(k)}:{v[:4]}" for k, v in sorted(r.link.items())) or "-",
                Text(str(r.alerts), style="bold red" if r.alerts else ""),
            )
        events = Text("\n").join(self.events) if self.events else Text("waiting for sensors…",
                                                                         style="dim")
        return Group(table, events)

    def print_counters(self, counters: dict[str, SensorCounters], dropped: int) -> None:
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
