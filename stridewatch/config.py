"""Configuration: one TOML file (``stridewatch.toml``) validated into one frozen settings object.

Secrets never live in the file: the InfluxDB token or password and the MQTT password come from
environment variables (``STRIDEWATCH_INFLUX_TOKEN``, ``STRIDEWATCH_INFLUX_USER``/``_PASSWORD``,
``STRIDEWATCH_MQTT_USER``/``_PASSWORD``). Validation collects every problem with where it is
(``athletes[0].max_hr_bpm``) and how to fix it; ``stridewatch config check FILE`` prints them.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ingest.records import SensorKind
from ingest.sensor_map import SensorAssignment
from outputs.influx import InfluxConfigError, InfluxTarget
from outputs.secrets import (
    ENV_INFLUX_PASSWORD,
    ENV_INFLUX_TOKEN,
    ENV_INFLUX_USER,
    ENV_MQTT_PASSWORD,
    ENV_MQTT_USER,
    output_secrets,
)
from processing.records import AlertKind, Severity
from processing.settings import AlertSettings, AthleteSettings, ProcessingSettings


def default_store_path() -> Path:
    """The session store in the user's data directory (e.g. ~/.local/share/stridewatch)."""
    return Path(platformdirs.user_data_dir("stridewatch")) / "sessions.sqlite"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SensorConfig(_Model):
    kind: Literal["heart_rate", "footpod"]
    address: str | None = None
    name: str | None = None
    cadence_unit: Literal["steps", "strides"] | None = None
    """Footpods only: what the cadence field counts (overrides detection)."""

    @model_validator(mode="after")
    def _identified(self) -> SensorConfig:
        if self.address is None and self.name is None:
            raise ValueError("a sensor needs an 'address' or a 'name' to be recognised")
        if self.cadence_unit is not None and self.kind != "footpod":
            raise ValueError("cadence_unit applies to footpods only")
        return self


class AthleteConfig(_Model):
    name: Annotated[str, Field(min_length=1)]
    max_hr_bpm: Annotated[float, Field(ge=100, le=240)] = 190.0
    resting_hr_bpm: Annotated[float, Field(ge=25, le=120)] = 55.0
    zones_pct_max: tuple[float, float, float, float] = (60.0, 70.0, 80.0, 90.0)
    sex: Literal["male", "female"] = "male"
    sensors: list[SensorConfig] = []

    # A field validator, not part of the model check below: it runs even when another field of
    # the athlete is wrong, so `config check` lists every problem at once (issue #11).
    @field_validator("zones_pct_max")
    @classmethod
    def _zones(cls, z: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        if list(z) != sorted(z) or not (z[0] > 0 and z[-1] < 100):
            raise ValueError("zones_pct_max must be 4 increasing percentages of max HR in 0..100")
        return z

    @model_validator(mode="after")
    def _consistent(self) -> AthleteConfig:
        if self.resting_hr_bpm >= self.max_hr_bpm:
            raise ValueError("resting_hr_bpm must be below max_hr_bpm")
        return self


class StoreConfig(_Model):
    path: str | None = None
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"


class SourcesConfig(_Model):
    ble: bool = True
    mqtt: str | None = None
    """Remote collectors' readings: ``mqtt://host:port``."""


class InfluxConfig(_Model):
    url: Annotated[str, Field(pattern=r"^https?://")]
    db: str | None = None
    retention_policy: str | None = None
    org: str | None = None
    bucket: str | None = None
    auth: Literal["none", "token", "password"] | None = None
    """Credentials from the environment; default: token for v2 (org/bucket), none for /write."""

    @model_validator(mode="after")
    def _mode(self) -> InfluxConfig:
        if (self.org is None) != (self.bucket is None):
            raise ValueError("the v2 API needs both 'org' and 'bucket'")
        if self.org is not None and self.db is not None:
            raise ValueError("give either 'db' (the /write API) or 'org'+'bucket' (the v2 API)")
        return self


class MqttConfig(_Model):
    url: Annotated[str, Field(pattern=r"^mqtts?://")]
    auth: Literal["none", "password"] = "none"
    ha_discovery: bool = False


class NotifyConfig(_Model):
    """One push target (``[[notify]]``): an Apprise URL, filters (issue #12)."""

    name: Annotated[str, Field(min_length=1)] | None = None
    """Shown in `status` and logs (default: notify-1, notify-2, ...)."""
    url: str | None = None
    """An Apprise URL (ntfy://, tgram://, json://, hassio://, ...). URLs often carry a token:
    prefer ``url_env``."""
    url_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    """The environment variable holding the URL (e.g. STRIDEWATCH_NOTIFY_COACH)."""
    athletes: list[str] | None = None
    """Only these athletes' alerts (default: everyone's)."""
    kinds: list[AlertKind] | None = None
    """Only these kinds (default: all)."""
    min_severity: Severity = Severity.INFO

    @model_validator(mode="after")
    def _one_url(self) -> NotifyConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of 'url' (an Apprise URL) or 'url_env' (the "
                             "environment variable that holds it)")
        return self


class SpeakConfig(_Model):
    """Spoken cues on the gateway (``[speak]``, issue #12)."""

    enabled: bool = True
    status_every_s: Annotated[float, Field(gt=0)] | None = None
    """Also say distance, pace and heart rate this often (default: alerts only)."""
    voice: str | None = None
    """An espeak-ng voice (``espeak-ng --voices``), e.g. "en-gb"."""


class OutputsConfig(_Model):
    influx: InfluxConfig | None = None
    mqtt: MqttConfig | None = None


class AlertsConfig(_Model):
    surge_rise_bpm: Annotated[float, Field(gt=0)] = 20.0
    surge_window_s: Annotated[float, Field(gt=0)] = 30.0
    ceiling_bpm: Annotated[float, Field(gt=0)] | None = None
    ceiling_hold_s: Annotated[float, Field(gt=0)] = 30.0
    early_surge_window_s: Annotated[float, Field(gt=0)] = 90.0
    early_surge_fallback_bpm: Annotated[float, Field(gt=0)] = 35.0
    low_readiness_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.75
    sensor_lost_s: Annotated[float, Field(gt=0)] = 10.0
    low_battery_pct: Annotated[int, Field(ge=1, le=99)] = 15
    cooldown_s: Annotated[float, Field(ge=0)] = 120.0


class ConfigFile(_Model):
    athletes: list[AthleteConfig] = []
    store: StoreConfig = StoreConfig()
    sources: SourcesConfig = SourcesConfig()
    outputs: OutputsConfig = OutputsConfig()
    alerts: AlertsConfig = AlertsConfig()
    notify: list[NotifyConfig] = []
    speak: SpeakConfig | None = None

    @field_validator("athletes")
    @classmethod
    def _unique(cls, athletes: list[AthleteConfig]) -> list[AthleteConfig]:
        names = [a.name for a in athletes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"athlete names must be unique: {dup}")
        return athletes


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config file."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NotifySettings:
    """One push target with its URL resolved (a secret: never printed)."""

    name: str
    url: SecretStr
    athletes: tuple[str, ...] | None
    kinds: tuple[AlertKind, ...] | None
    min_severity: Severity


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SpeakSettings:
    status_every_s: float | None
    voice: str | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MqttSettings:
    url: str
    ha_discovery: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The validated configuration of one stridewatch process."""

    processing: ProcessingSettings
    sensors: tuple[SensorAssignment, ...]
    store_path: Path
    store_synchronous: Literal["NORMAL", "FULL"]
    ble: bool
    mqtt_source: str | None
    influx: InfluxTarget | None
    notify: tuple[NotifySettings, ...] = ()
    speak: SpeakSettings | None = None
    """The one InfluxDB settings shape (:class:`outputs.influx.InfluxTarget`), secrets
    from the environment."""
    mqtt: MqttSettings | None


class ConfigError(Exception):
    """A config file with problems; ``problems`` lists each with its location."""

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s):\n{lines}")


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(file)"


def _hint(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    msg = str(error.get("msg", "invalid"))
    if kind == "extra_forbidden":
        return (
            "unknown setting: remove it or check its spelling "
            "(see deploy/stridewatch.example.toml)"
        )
    if kind == "missing":
        return "required setting is missing: add it"
    if kind == "string_pattern_mismatch":
        return (
            "not a URL of the right kind: use e.g. http://127.0.0.1:8086 for InfluxDB, "
            "mqtt://127.0.0.1:1883 (or mqtts://) for MQTT"
        )
    return msg.removeprefix("Value error, ")


def _secrets(cfg: ConfigFile, env: Mapping[str, str]) -> tuple[list[Problem], dict[str, Any]]:
    """Missing credentials, and the outputs' targets built with them (secrets are read in one
    place, :mod:`outputs.secrets`)."""
    problems: list[Problem] = []
    found: dict[str, Any] = {}
    secrets = output_secrets(env)
    influx = cfg.outputs.influx
    if influx is not None:
        auth = influx.auth or ("token" if influx.org else "none")
        missing: list[str] = []
        if auth == "token" and secrets.influx_token is None:
            missing = [ENV_INFLUX_TOKEN]
        elif auth == "password":
            missing = [var for var, value in ((ENV_INFLUX_USER, secrets.influx_user),
                                              (ENV_INFLUX_PASSWORD, secrets.influx_password))
                       if value is None]
        for var in missing:
            what = "a token" if auth == "token" else "a user and password"
            problems.append(Problem("outputs.influx.auth",
                                    f"needs {what}: set the environment variable {var}"))
        if not missing:
            try:
                found["influx"] = InfluxTarget.build(
                    influx.url, database=influx.db, retention_policy=influx.retention_policy,
                    org=influx.org, bucket=influx.bucket, auth=auth, environ=env,
                )
            except InfluxConfigError as exc:
                problems.append(Problem("outputs.influx", str(exc)))
    urls: list[SecretStr] = []
    for i, n in enumerate(cfg.notify):
        if n.url_env is not None:
            from_env = env.get(n.url_env)
            if not from_env:
                problems.append(Problem(f"notify[{i}].url_env",
                                        f"set the environment variable {n.url_env} to the "
                                        "Apprise URL"))
                continue
            urls.append(SecretStr(from_env))
        else:
            urls.append(SecretStr(n.url or ""))
    found["notify_urls"] = urls
    mqtt = cfg.outputs.mqtt
    if mqtt is not None and mqtt.auth == "password":
        for var, value in ((ENV_MQTT_USER, secrets.mqtt_user),
                           (ENV_MQTT_PASSWORD, secrets.mqtt_password)):
            if value is None:
                problems.append(Problem("outputs.mqtt.auth",
                                        f"needs a user and password: set the environment "
                                        f"variable {var}"))
    return problems, found


def _secrets_of_raw(data: Mapping[str, Any], env: Mapping[str, str]) -> list[Problem]:
    """Missing secrets, found even when other parts of the file are invalid."""
    outputs = data.get("outputs")
    if not isinstance(outputs, Mapping):
        outputs = {}
    partial: dict[str, Any] = {}
    for key, model in (("influx", InfluxConfig), ("mqtt", MqttConfig)):
        raw = outputs.get(key)
        if isinstance(raw, Mapping):
            try:
                partial[key] = model.model_validate(raw)
            except ValidationError:
                continue
    notify: list[NotifyConfig] = []
    raw_notify = data.get("notify")
    for raw in raw_notify if isinstance(raw_notify, list) else []:
        if isinstance(raw, Mapping):
            try:
                notify.append(NotifyConfig.model_validate(raw))
            except ValidationError:
                continue
    problems, _ = _secrets(ConfigFile(outputs=OutputsConfig(**partial), notify=notify), env)
    return problems


def check_config(path: str | Path, env: Mapping[str, str] | None = None) -> list[Problem]:
    """Every problem of a config file (an empty list when it is fine)."""
    try:
        load_config(path, env)
    except ConfigError as exc:
        return exc.problems
    return []


def _parse(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [Problem("(file)", "no such file: check the path")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [Problem("(file)", f"cannot read it: {exc}")]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [Problem("(file)", f"not valid TOML: {exc}")]) from None


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read, validate and convert a config file; raises :class:`ConfigError` listing problems."""
    path = Path(path)
    env = os.environ if env is None else env
    data = _parse(path)
    try:
        cfg = ConfigFile.model_validate(data)
    except ValidationError as exc:
        problems = [Problem(_where(tuple(e["loc"])), _hint(e)) for e in exc.errors()]
        problems.extend(_secrets_of_raw(data, env))
        raise ConfigError(str(path), problems) from None
    problems, secrets = _secrets(cfg, env)
    if problems:
        raise ConfigError(str(path), problems)
    return settings_from(cfg, secrets)


def settings_from(cfg: ConfigFile, secrets: Mapping[str, Any] | None = None) -> Settings:
    """Convert a validated config into the frozen :class:`Settings`."""
    secrets = secrets or {}
    athletes: dict[str, AthleteSettings] = {}
    sensors: list[SensorAssignment] = []
    for a in cfg.athletes:
        overrides = {
            s.address or s.name or "": s.cadence_unit
            for s in a.sensors
            if s.cadence_unit is not None
        }
        athletes[a.name] = AthleteSettings(
            max_hr_bpm=a.max_hr_bpm,
            resting_hr_bpm=a.resting_hr_bpm,
            zone_bounds_pct_max=a.zones_pct_max,
            sex=a.sex,
            sensor_priority=tuple(s.address or s.name or "" for s in a.sensors),
            cadence_unit=overrides,
        )
        for s in a.sensors:
            sensors.append(
                SensorAssignment(a.name, SensorKind(s.kind), address=s.address, name=s.name)
            )
    al = cfg.alerts
    processing = ProcessingSettings(
        athletes=athletes,
        alerts=AlertSettings(
            surge_rise_bpm=al.surge_rise_bpm,
            surge_window_s=al.surge_window_s,
            ceiling_bpm=al.ceiling_bpm,
            ceiling_hold_s=al.ceiling_hold_s,
            early_surge_window_s=al.early_surge_window_s,
            early_surge_fallback_bpm=al.early_surge_fallback_bpm,
            low_readiness_ratio=al.low_readiness_ratio,
            sensor_lost_s=al.sensor_lost_s,
            low_battery_pct=al.low_battery_pct,
            cooldown_s=al.cooldown_s,
        ),
    )
    influx: InfluxTarget | None = secrets.get("influx")
    mqtt = None
    if cfg.outputs.mqtt is not None:
        mqtt = MqttSettings(url=cfg.outputs.mqtt.url, ha_discovery=cfg.outputs.mqtt.ha_discovery)
    urls: list[SecretStr] = list(secrets.get("notify_urls") or [])
    notify = tuple(
        NotifySettings(name=n.name or f"notify-{i + 1}", url=url,
                       athletes=tuple(n.athletes) if n.athletes is not None else None,
                       kinds=tuple(n.kinds) if n.kinds is not None else None,
                       min_severity=n.min_severity)
        for i, (n, url) in enumerate(zip(cfg.notify, urls, strict=False))
    )
    speak = (SpeakSettings(status_every_s=cfg.speak.status_every_s, voice=cfg.speak.voice)
             if cfg.speak is not None and cfg.speak.enabled else None)
    return Settings(
        notify=notify,
        speak=speak,
        processing=processing,
        sensors=tuple(sensors),
        store_path=Path(cfg.store.path).expanduser() if cfg.store.path else default_store_path(),
        store_synchronous=cfg.store.synchronous,
        ble=cfg.sources.ble,
        mqtt_source=cfg.sources.mqtt,
        influx=influx,
        mqtt=mqtt,
    )


def default_settings() -> Settings:
    """Settings with every default (no config file)."""
    return settings_from(ConfigFile())
