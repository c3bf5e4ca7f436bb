"""Where the MQTT broker is and how to log in: :class:`MqttTarget` (the one settings model).

Credentials come from the environment through :mod:`outputs.secrets` (``SecretStr``), never
from the URL: a URL with a user or password is refused, and the error message shows the URL
with its credentials replaced by ``***`` (the password is never printed).
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping
from typing import Final

from pydantic import SecretStr

from outputs.secrets import ENV_MQTT_PASSWORD, ENV_MQTT_USER, OutputSecrets, output_secrets

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TLS_PORT",
    "ENV_PASSWORD",
    "ENV_USER",
    "MqttTarget",
    "redact_url",
]

ENV_USER: Final = ENV_MQTT_USER
ENV_PASSWORD: Final = ENV_MQTT_PASSWORD

DEFAULT_PORT: Final = 1883
DEFAULT_TLS_PORT: Final = 8883

EXPECTED: Final = "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@`` (for error messages).

    >>> redact_url("mqtt://gw:hunter2@broker:1883")
    'mqtt://***@broker:1883'
    >>> redact_url("mqtt://broker")
    'mqtt://broker'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{slash}{tail}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MqttTarget:
    """Where the broker is and how to log in.

    ``password`` is a :class:`SecretStr` (its ``str``/``repr`` is ``**********``); only
    :func:`outputs.mqtt.client.make_client` reads its value.
    """

    host: str
    port: int = DEFAULT_PORT
    tls: bool = False
    username: str | None = None
    password: SecretStr | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("MQTT host is empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"MQTT port must be 1..65535, got {self.port}")
        if self.password is not None and self.username is None:
            raise ValueError(f"{ENV_PASSWORD} is set but {ENV_USER} is not")

    @classmethod
    def from_url(cls, url: str, *, env: Mapping[str, str] | None = None,
                 secrets: OutputSecrets | None = None) -> MqttTarget:
        """``mqtt://HOST[:PORT]`` (plain, port 1883) or ``mqtts://HOST[:PORT]`` (TLS, 8883).

        Credentials: ``secrets`` if given, else :func:`outputs.secrets.output_secrets` of
        ``env`` (tests) or of the process environment (``env=None``).
        """
        shown = redact_url(url)
        try:
            parts = urllib.parse.urlsplit(url)
            has_credentials = parts.username is not None or parts.password is not None
        except ValueError:
            has_credentials = "@" in url.partition("://")[2].partition("/")[0]
            parts = None
        if has_credentials:
            raise ValueError(
                f"bad MQTT URL {shown!r}: {EXPECTED}; put credentials in {ENV_USER} and "
                f"{ENV_PASSWORD}, not in the URL"
            )
        try:
            if parts is None:
                raise ValueError("unparsable URL")
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad MQTT URL {shown!r}: {EXPECTED} ({exc})") from None
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"bad MQTT URL {shown!r}: {EXPECTED}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"bad MQTT URL {shown!r}: {EXPECTED} (no path or query)")
        tls = parts.scheme == "mqtts"
        creds = secrets if secrets is not None else output_secrets(env)
        return cls(
            host=parts.hostname,
            port=port if port is not None else (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
            tls=tls,
            username=creds.mqtt_user,
            password=creds.mqtt_password,
        )

    @property
    def url(self) -> str:
        """``mqtt[s]://HOST:PORT``: no credentials, safe for messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"
