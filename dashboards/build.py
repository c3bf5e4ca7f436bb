"""The three stridewatch dashboards, built with grafana-foundation-sdk (Grafana 11.6 target).

* ``stridewatch-live``: one athlete, now-15m, refresh 5 s.
* ``stridewatch-post-run``: one athlete, the time range of a session, no refresh.
* ``stridewatch-team``: every athlete (multi-select), one row per athlete.

Every panel query is a :class:`dashboards.influxql.Query` (InfluxQL only) against the schema of
``docs/influxdb.md``. :func:`dashboards` returns the built dashboards together with the
queries of every panel and annotation (the tests check them against the schema and run them
against a real influxd).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig, ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DashboardLink,
    FieldColor,
    QueryVariable,
    ThresholdsConfig,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards.influxql import (
    ATHLETE_TAG,
    Eq,
    Fill,
    Fn,
    Query,
    ResultFormat,
    Select,
    target,
)
from processing.settings import AlertSettings, AthleteSettings

DATASOURCE_UID = "stridewatch-influxql"
"""uid of the InfluxDB (InfluxQL) data source the provisioning file must create."""
DATASOURCE_TYPE = "influxdb"
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}

LIVE_UID = "stridewatch-live"
POST_RUN_UID = "stridewatch-post-run"
TEAM_UID = "stridewatch-team"
TAGS = ["stridewatch"]

ATHLETE_VARIABLE_QUERY = f'SHOW TAG VALUES FROM "heart" WITH KEY = "{ATHLETE_TAG}"'
SENSOR_PANEL_RANGE = "12h"
"""Battery and link events arrive on change only: their panels look back this far."""

DFA_AEROBIC = 0.75
DFA_ANAEROBIC = 0.5

_ZONE_COLORS = ("blue", "green", "yellow", "orange", "red")
_SEGMENT_COLORS = {"stand": "text", "walk": "blue", "run": "green", "sprint": "red"}
_LINK_COLORS = {
    "connected": "green",
    "disconnected": "red",
    "silent": "orange",
    "no_contact": "orange",
    "rr_gap": "yellow",
}


def _ds() -> model.DataSourceRef:
    return model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


# ------------------------------------------------------------------ SDK glue (typed edge)


class InfluxQLTarget(cogvariants.Dataquery):
    """A panel target the SDK has no InfluxDB model for: our dict, serialized as is."""

    def __init__(self, payload: dict[str, object]) -> None:
        self.payload = payload

    def to_json(self) -> dict[str, object]:
        return dict(self.payload)


@dataclasses.dataclass(frozen=True, slots=True)
class Target(cogbuilder.Builder[cogvariants.Dataquery]):
    """One query of a panel, with how Grafana shapes its result."""

    query: Query
    ref_id: str = "A"
    result_format: ResultFormat = ResultFormat.TIME_SERIES
    alias: str | None = None

    def build(self) -> cogvariants.Dataquery:
        return InfluxQLTarget(
            target(
                self.query,
                self.ref_id,
                result_format=self.result_format,
                alias=self.alias,
                datasource=DATASOURCE,
            )
        )


class InfluxAnnotation(model.AnnotationQuery):
    """An InfluxQL annotation query (the SDK's model has no slot for the InfluxDB target)."""

    def __init__(
        self,
        *,
        name: str,
        query: Query,
        text_column: str,
        tags_column: str = "",
        time_end_column: str = "",
        icon_color: str = "red",
    ) -> None:
        super().__init__(name=name, datasource=_ds(), enable=True, icon_color=icon_color)
        self.query = query
        self.text_column = text_column
        self.tags_column = tags_column
        self.time_end_column = time_end_column

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        anno: dict[str, object] = {
            **target(self.query, "Anno", result_format=ResultFormat.TABLE, datasource=DATASOURCE),
            "fromAnnotations": True,
            "textColumn": self.text_column,
            "tagsColumn": self.tags_column,
        }
        if self.time_end_column:
            anno["timeEndColumn"] = self.time_end_column
        payload["target"] = anno
        return payload


@dataclasses.dataclass(frozen=True, slots=True)
class Annotation(cogbuilder.Builder[model.AnnotationQuery]):
    """Builder of :class:`InfluxAnnotation`."""

    name: str
    query: Query
    text_column: str
    tags_column: str = ""
    time_end_column: str = ""
    icon_color: str = "red"

    def build(self) -> model.AnnotationQuery:
        return InfluxAnnotation(
            name=self.name,
            query=self.query,
            text_column=self.text_column,
            tags_column=self.tags_column,
            time_end_column=self.time_end_column,
            icon_color=self.icon_color,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class PanelQuery:
    """A query of a built dashboard: where it is and what it reads."""

    dashboard_uid: str
    panel: str
    """Panel title, or ``annotation: <name>`` / ``variable: <name>``."""
    ref_id: str
    query: Query | None
    """None for the template variable (``SHOW TAG VALUES``), whose text is :attr:`text`."""
    text: str


P = TypeVar("P", timeseries.Panel, table.Panel, stat.Panel, statetimeline.Panel, bargauge.Panel)


class Board:
    """A dashboard being built: assigns panel ids and records every query."""

    def __init__(self, uid: str, title: str, description: str) -> None:
        self.uid = uid
        self.builder = (
            Dashboard(title)
            .uid(uid)
            .description(description)
            .tags(TAGS)
            .timezone("browser")
            .editable()
            .tooltip(model.DashboardCursorSync.CROSSHAIR)
        )
        self.queries: list[PanelQuery] = []
        self._next_id = 1

    def variable(self, *, multi: bool) -> None:
        var = (
            QueryVariable("athlete")
            .label("Athlete")
            .description("athlete tag of the InfluxDB points")
            .datasource(_ds())
            .query(ATHLETE_VARIABLE_QUERY)
            .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(multi)
            .include_all(multi)
        )
        if multi:
            var = var.all_value(".*").current(
                model.VariableOption(selected=True, text="All", value="$__all")
            )
        self.builder.with_variable(var)
        self.queries.append(
            PanelQuery(self.uid, "variable: athlete", "", None, ATHLETE_VARIABLE_QUERY)
        )

    def annotation(self, anno: Annotation) -> None:
        self.builder.annotation(anno)
        self.queries.append(
            PanelQuery(self.uid, f"annotation: {anno.name}", "Anno", anno.query,
                       anno.query.render())
        )  # fmt: skip

    def add(
        self, panel: P, title: str, targets: Sequence[Target], *, w: int, h: int,
        description: str = "",
    ) -> int:  # fmt: skip
        """Give ``panel`` its id, title, data source, targets and size; add it."""
        panel_id = self._next_id
        self._next_id += 1
        panel = panel.id(panel_id).title(title).datasource(_ds()).span(w).height(h)
        if description:
            panel = panel.description(description)
        for t in targets:
            panel = panel.with_target(t)
            self.queries.append(PanelQuery(self.uid, title, t.ref_id, t.query, t.query.render()))
        self.builder.with_panel(panel)
        return panel_id


def _refs(*queries: Query, fmt: ResultFormat = ResultFormat.TIME_SERIES) -> list[Target]:
    return [Target(q, chr(ord("A") + i), fmt) for i, q in enumerate(queries)]


def _mean(measurement: str, *fields: tuple[str, str], fill: Fill = Fill.NULL) -> Query:
    return Query(measurement, tuple(Select(f, Fn.MEAN, alias) for f, alias in fields), fill=fill)


def _thresholds(base: str, *steps: tuple[float, str]) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=None, color=base)]
               + [model.Threshold(value=v, color=c) for v, c in steps])
    )  # fmt: skip


def hr_zone_bounds_bpm(athlete: AthleteSettings | None = None) -> list[float]:
    """Lower bounds of zones 2..5 in bpm (the defaults: max HR 190 → 114, 133, 152, 171)."""
    a = athlete or AthleteSettings()
    return [round(a.max_hr_bpm * pct / 100.0, 1) for pct in a.zone_bounds_pct_max]


def _zone_thresholds() -> ThresholdsConfig:
    bounds = hr_zone_bounds_bpm()
    return _thresholds(_ZONE_COLORS[0], *zip(bounds, _ZONE_COLORS[1:], strict=True))


def _mapping(colors: dict[str, str]) -> list[model.ValueMapping]:
    return [
        model.ValueMap(
            options={
                value: model.ValueMappingResult(text=value, color=color, index=i)
                for i, (value, color) in enumerate(colors.items())
            }
        )
    ]


def _lines(ts: timeseries.Panel, mode: common.GraphThresholdsStyleMode) -> timeseries.Panel:
    return ts.thresholds_style(GraphThresholdsStyleConfig().mode(mode))


def _alerts_annotation() -> Annotation:
    return Annotation(
        name="Alerts",
        query=Query(
            "alert",
            (Select("message"), Select("kind"), Select("severity"), Select("value")),
            interval=None,
            fill=None,
        ),
        text_column="message",
        tags_column="kind,severity",
        icon_color="red",
    )


def _segments_annotation() -> Annotation:
    return Annotation(
        name="Segments",
        query=Query(
            "segment",
            (Select("kind"), Select("end_unix_ms"), Select("distance_m")),
            interval=None,
            fill=None,
        ),
        text_column="kind",
        tags_column="kind",
        time_end_column="end_unix_ms",
        icon_color="blue",
    )


def _session_end_annotation() -> Annotation:
    return Annotation(
        name="Session end",
        query=Query(
            "session",
            (Select("readiness"), Select("distance_m"), Select("trimp")),
            where=(Eq("final", True),),
            interval=None,
            fill=None,
        ),
        text_column="readiness",
        icon_color="purple",
    )


# ------------------------------------------------------------------ live


def build_live() -> Board:
    b = Board(
        LIVE_UID,
        "stridewatch · live",
        "One athlete, live: heart rate and surges, HRV, gait, segment, sensors.",
    )
    b.builder.time("now-15m", "now").refresh("5s")
    b.variable(multi=False)
    b.annotation(_alerts_annotation())
    b.add(
        _lines(timeseries.Panel(), common.GraphThresholdsStyleMode.DASHED_AND_AREA)
        .unit("suffix: bpm")
        .thresholds(_zone_thresholds())
        .color_scheme(_field_color_thresholds()),
        "Heart rate",
        _refs(_mean("heart", ("heart_rate_bpm", "HR"))),
        w=12, h=8,
        description="Zones 2–5 start at 60/70/80/90 % of max HR (default 190 bpm); alerts "
        "are annotations.",
    )  # fmt: skip
    surge = AlertSettings().surge_rise_bpm
    b.add(
        _lines(timeseries.Panel(), common.GraphThresholdsStyleMode.DASHED)
        .unit("suffix: bpm")
        .thresholds(_thresholds("green", (surge, "red"))),
        "HR rise rate (30 s)",
        _refs(Query("heart", (Select("rise_30s_bpm", Fn.MAX, "rise 30 s"),))),
        w=12, h=8,
        description=f"HR rise over the last 30 s; a surge alert fires at +{surge:.0f} bpm.",
    )  # fmt: skip
    b.add(
        timeseries.Panel().unit("ms"),
        "RR intervals",
        _refs(_mean("rr", ("rr_ms", "RR"), ("clean_rr_ms", "clean RR"))),
        w=8, h=8,
    )  # fmt: skip
    b.add(
        timeseries.Panel().unit("ms"),
        "RMSSD",
        _refs(_mean("hrv", ("rmssd_60s_ms", "RMSSD 60 s"), ("rmssd_300s_ms", "RMSSD 5 min"))),
        w=8, h=8,
    )  # fmt: skip
    b.add(
        _lines(timeseries.Panel(), common.GraphThresholdsStyleMode.LINE_AND_AREA)
        .decimals(2)
        .min(0.0)
        .thresholds(_thresholds("red", (DFA_ANAEROBIC, "orange"), (DFA_AEROBIC, "green"))),
        "DFA α1",
        _refs(_mean("hrv", ("dfa_alpha1", "DFA α1"))),
        w=8, h=8,
        description="Above 0.75: aerobic; 0.75–0.5: between the thresholds; below 0.5: "
        "above the anaerobic threshold. Suppressed while artifacts ≥ 3 %.",
    )  # fmt: skip
    b.add(
        timeseries.Panel().unit("suffix: spm"),
        "Cadence",
        _refs(_mean("gait", ("cadence_spm", "cadence"))),
        w=8, h=8,
    )  # fmt: skip
    b.add(
        timeseries.Panel().unit("lengthm").decimals(2),
        "Step length",
        _refs(_mean("gait", ("step_length_m", "step length"))),
        w=8, h=8,
        description="One step, foot strike to the next foot strike (a stride is two steps).",
    )  # fmt: skip
    b.add(
        timeseries.Panel().unit("dthms"),
        "Pace (per km)",
        _refs(_mean("gait", ("pace_s_per_km", "pace"))),
        w=8, h=8,
        description="Mean of the footpod pace (time per km) while moving.",
    )  # fmt: skip
    b.add(
        statetimeline.Panel().mappings(_mapping(_SEGMENT_COLORS)).show_value(
            common.VisibilityMode.AUTO
        ),
        "Segment",
        _refs(
            Query("gait", (Select("segment", Fn.LAST, "segment"),), fill=Fill.NONE)
        ),
        w=24, h=4,
    )  # fmt: skip
    b.add(
        stat.Panel().unit("percent").time_from(SENSOR_PANEL_RANGE)
        .thresholds(_thresholds("red", (15.0, "orange"), (30.0, "green")))
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False)),
        "Battery",
        [Target(
            Query("battery", (Select("level_pct", Fn.LAST, "battery"),), interval=None,
                  tags=("sensor",)),
            alias="$tag_sensor",
        )],
        w=12, h=5,
        description="Last level per sensor in the last 12 h (sensors report on change).",
    )  # fmt: skip
    b.add(
        stat.Panel().time_from(SENSOR_PANEL_RANGE).mappings(_mapping(_LINK_COLORS))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).fields("/.*/")
                        .values(False)),
        "Link state",
        [Target(
            Query("link", (Select("state", Fn.LAST, "state"),), interval=None,
                  tags=("sensor",)),
            alias="$tag_sensor",
        )],
        w=12, h=5,
        description="Last link event per sensor in the last 12 h.",
    )  # fmt: skip
    return b


def _field_color_thresholds() -> FieldColor:
    return FieldColor().mode(model.FieldColorModeId.THRESHOLDS)


# ------------------------------------------------------------------ post-run


def _zoom_link(title: str, to_field: str) -> DashboardLink:
    return DashboardLink(title).url(
        f"/d/{POST_RUN_UID}?${{athlete:queryparam}}&from=${{__value.time}}"
        f"&to=${{__data.fields.{to_field}}}"
    )


def build_post_run() -> Board:
    b = Board(
        POST_RUN_UID,
        "stridewatch · post-run",
        "One session of one athlete: pick its time range from the Segments / Session end "
        "annotations or a segment row (see docs/dashboards.md).",
    )
    b.builder.time("now-3h", "now").refresh("")  # no auto-refresh: a finished session
    b.variable(multi=False)
    b.annotation(_segments_annotation())
    b.annotation(_session_end_annotation())
    b.annotation(_alerts_annotation())
    final = (Eq("final", True),)
    raw_table = ResultFormat.TABLE
    b.add(
        table.Panel(),
        "Session summary",
        _refs(
            Query(
                "session",
                tuple(Select(f) for f in (
                    "distance_m", "avg_hr_bpm", "max_hr_bpm", "trimp", "readiness",
                    "resting_rmssd_ms", "early_rise_bpm", "decoupling_pct",
                    "hr_at_alpha1_075_bpm", "hr_at_alpha1_050_bpm", "beats",
                )),
                where=final, interval=None, fill=None,
            ),
            fmt=raw_table,
        ),
        w=24, h=5,
        description="The final session metric (written once, at the end of the session).",
    )  # fmt: skip
    b.add(
        table.Panel(),
        "Splits",
        _refs(
            Query(
                "split",
                tuple(Select(f) for f in (
                    "index", "distance_m", "duration_s", "pace_s_per_km", "avg_hr_bpm",
                    "avg_cadence_spm",
                )),
                interval=None, fill=None,
            ),
            fmt=raw_table,
        ),
        w=12, h=9,
    )  # fmt: skip
    b.add(
        table.Panel().data_links([_zoom_link("Zoom to this segment", "end_unix_ms")]),
        "Segments",
        _refs(
            Query(
                "segment",
                tuple(Select(f) for f in (
                    "kind", "duration_s", "distance_m", "avg_pace_s_per_km", "avg_hr_bpm",
                    "max_hr_bpm", "avg_cadence_spm", "avg_step_length_m", "start_m", "end_m",
                    "end_unix_ms",
                )),
                interval=None, fill=None,
            ),
            fmt=raw_table,
        ),
        w=12, h=9,
        description="Rows link to the same dashboard zoomed to the segment.",
    )  # fmt: skip
    b.add(
        table.Panel(),
        "Accelerations",
        _refs(
            Query(
                "acceleration",
                tuple(Select(f) for f in (
                    "start_m", "time_to_90pct_s", "distance_to_90pct_m", "peak_speed_mps",
                    "peak_cadence_spm", "peak_step_length_m", "peak_stride_length_m", "steps",
                )),
                interval=None, fill=None,
            ),
            fmt=raw_table,
        ),
        w=24, h=7,
        description="Accelerations from standstill (time is when each was over).",
    )  # fmt: skip
    b.add(
        timeseries.Panel()
        .unit("suffix: bpm")
        .override_by_name("pace", [
            model.DynamicConfigValue(id_val="unit", value="dthms"),
            model.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
        ]),
        "HR vs pace (decoupling)",
        _refs(
            _mean("heart", ("heart_rate_bpm", "HR")),
            _mean("gait", ("pace_s_per_km", "pace")),
        ),
        w=16, h=9,
        description="HR drifting up at a steady pace is cardiac decoupling.",
    )  # fmt: skip
    b.add(
        stat.Panel().unit("percent").decimals(1)
        .thresholds(_thresholds("green", (5.0, "orange"), (10.0, "red"))),
        "Aerobic decoupling",
        _refs(Query("session", (Select("decoupling_pct", Fn.LAST, "decoupling"),),
                    where=final, interval=None)),
        w=8, h=9,
        description="Pa:HR decoupling of the first run segment (final session metric).",
    )  # fmt: skip
    b.add(
        bargauge.Panel().unit("dtdurations")
        .orientation(common.VizOrientation.HORIZONTAL)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False)),
        "Time in zones",
        _refs(Query(
            "session",
            tuple(Select(f"zone{z}_s", Fn.LAST, f"Zone {z}") for z in range(1, 6)),
            where=final, interval=None,
        )),
        w=12, h=8,
        description="zone1_s … zone5_s of the final session metric.",
    )  # fmt: skip
    b.add(
        statetimeline.Panel().mappings(_mapping(_SEGMENT_COLORS)),
        "Segments over time",
        _refs(Query("session", (Select("segment", Fn.LAST, "segment"),), fill=Fill.NONE)),
        w=12, h=8,
    )  # fmt: skip
    return b


# ------------------------------------------------------------------ team


def _per_athlete(source: str | Query, column: Select, *, inner: bool = False,
                 where: tuple[Eq, ...] = ()) -> Query:  # fmt: skip
    return Query(source, (column,), where=where, athlete=not inner, interval=None,
                 tags=(ATHLETE_TAG,))  # fmt: skip


def build_team() -> Board:
    b = Board(
        TEAM_UID,
        "stridewatch · team",
        "Every athlete at a glance: one row per athlete.",
    )
    b.builder.time("now-15m", "now").refresh("5s")
    b.variable(multi=True)
    b.annotation(_alerts_annotation())
    battery_per_sensor = Query(
        "battery", (Select("level_pct", Fn.LAST, "level"),), interval=None,
        tags=(ATHLETE_TAG, "sensor"),
    )  # fmt: skip
    link_per_sensor = Query(
        "link", (Select("state", Fn.LAST, "state"),), interval=None,
        tags=(ATHLETE_TAG, "sensor"),
    )  # fmt: skip
    queries = [
        _per_athlete("heart", Select("heart_rate_bpm", Fn.LAST, "HR")),
        _per_athlete("heart", Select("zone", Fn.LAST, "zone")),
        _per_athlete("session", Select("segment", Fn.LAST, "segment")),
        _per_athlete("alert", Select("message", Fn.LAST, "last alert")),
        _per_athlete(battery_per_sensor, Select("level", Fn.MIN, "battery"), inner=True),
        _per_athlete(link_per_sensor, Select("state", Fn.COUNT, "sensors connected"),
                     inner=True, where=(Eq("state", "connected"),)),
    ]  # fmt: skip
    team_table = (
        table.Panel()
        .time_from(SENSOR_PANEL_RANGE)
        .with_transformation(model.DataTransformerConfig(
            id_val="joinByField", options={"byField": ATHLETE_TAG, "mode": "outer"}))
        .with_transformation(model.DataTransformerConfig(
            id_val="filterFieldsByName", options={"exclude": {"pattern": "^Time"}}))
        .override_by_name("battery", [model.DynamicConfigValue(id_val="unit", value="percent")])
        .override_by_name("HR", [model.DynamicConfigValue(id_val="unit", value="suffix: bpm")])
        .override_by_name("sensors connected",
                          [model.DynamicConfigValue(id_val="noValue", value="0")])
    )  # fmt: skip
    b.add(
        team_table,
        "Athletes",
        _refs(*queries, fmt=ResultFormat.TABLE),
        w=24, h=8,
        description="Last values per athlete over the last 12 h; battery is the lowest of the "
        "athlete's sensors, sensors connected counts sensors whose last link event is "
        "'connected'.",
    )  # fmt: skip
    b.add(
        _lines(timeseries.Panel(), common.GraphThresholdsStyleMode.DASHED)
        .unit("suffix: bpm").thresholds(_zone_thresholds()),
        "Heart rate by athlete",
        [Target(
            Query("heart", (Select("heart_rate_bpm", Fn.MEAN, "HR"),), tags=(ATHLETE_TAG,)),
            alias="$tag_athlete",
        )],
        w=24, h=8,
    )  # fmt: skip
    b.add(
        table.Panel(),
        "Recent alerts",
        _refs(
            Query(
                "alert",
                (Select("athlete"), Select("kind"), Select("severity"), Select("message")),
                interval=None, fill=None,
            ),
            fmt=ResultFormat.TABLE,
        ),
        w=24, h=8,
    )  # fmt: skip
    return b


def boards() -> list[Board]:
    """The three dashboards, freshly built."""
    return [build_live(), build_post_run(), build_team()]


def dashboards() -> dict[str, model.Dashboard]:
    """uid → built dashboard model."""
    return {b.uid: b.builder.build() for b in boards()}


def panel_queries() -> list[PanelQuery]:
    """Every query of every dashboard (panels, annotations, the template variable)."""
    return [q for b in boards() for q in b.queries]
