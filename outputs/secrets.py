"""Credentials of the network outputs, read from the environment in one place (issue #10).

Secrets never come from URLs or config files (they would show in process lists, shell history
and backups) and never reach a log line or an error message: they are :class:`SecretStr`, whose
``str()`` and ``repr()`` print ``**********``. Every output target takes its credentials from
:func:`output_secrets`.

>>> s = OutputSecrets(STRIDEWATCH_MQTT_USER="gw", STRIDEWATCH_MQTT_PASSWORD="hunter2")
>>> s.mqtt_user, str(s.mqtt_password)
('gw', '**********')
>>> s.mqtt_password.get_secret_value() if s.mqtt_password else None
'hunter2'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "ENV_INFLUX_PASSWORD",
    "ENV_INFLUX_TOKEN",
    "ENV_INFLUX_USER",
    "ENV_MQTT_PASSWORD",
    "ENV_MQTT_USER",
    "OutputSecrets",
    "output_secrets",
]

ENV_MQTT_USER: Final = "STRIDEWATCH_MQTT_USER"
ENV_MQTT_PASSWORD: Final = "STRIDEWATCH_MQTT_PASSWORD"
ENV_INFLUX_TOKEN: Final = "STRIDEWATCH_INFLUX_TOKEN"
ENV_INFLUX_USER: Final = "STRIDEWATCH_INFLUX_USER"
ENV_INFLUX_PASSWORD: Final = "STRIDEWATCH_INFLUX_PASSWORD"


class OutputSecrets(BaseSettings):
    """Credentials for MQTT and InfluxDB. An empty variable counts as unset."""

    model_config = SettingsConfigDict(
        case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True,
        populate_by_name=True,
    )

    mqtt_user: str | None = Field(default=None, alias=ENV_MQTT_USER)
    mqtt_password: SecretStr | None = Field(default=None, alias=ENV_MQTT_PASSWORD)
    influx_token: SecretStr | None = Field(default=None, alias=ENV_INFLUX_TOKEN)
    influx_user: str | None = Field(default=None, alias=ENV_INFLUX_USER)
    influx_password: SecretStr | None = Field(default=None, alias=ENV_INFLUX_PASSWORD)


def output_secrets(environ: Mapping[str, str] | None = None) -> OutputSecrets:
    """The credentials from ``environ`` (tests) or the process environment (``None``)."""
    if environ is None:
        return OutputSecrets()
    known = (ENV_MQTT_USER, ENV_MQTT_PASSWORD, ENV_INFLUX_TOKEN, ENV_INFLUX_USER,
             ENV_INFLUX_PASSWORD)
    given = {k: v for k, v in environ.items() if k in known and v}
    return OutputSecrets.model_validate(given)
