"""The InfluxDB target: one settings model (:class:`InfluxTarget`), its errors and defaults.

:class:`InfluxTarget` is the only shape of the InfluxDB settings: the command line
(``--influx URL``) and the config file (``[outputs.influx]``) both build it, with
:meth:`InfluxTarget.build`; credentials come from the environment through
:func:`outputs.secrets.output_secrets` (``STRIDEWATCH_INFLUX_TOKEN``, ``STRIDEWATCH_INFLUX_USER``,
``STRIDEWATCH_INFLUX_PASSWORD``) and are kept as :class:`~pydantic.SecretStr`, so no ``repr``,
log line or error message shows them. A URL with credentials in it is refused (without echoing
them).
"""

from __future__ import annotations

import base64
import dataclasses
import urllib.parse
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import SecretStr

from outputs.secrets import ENV_INFLUX_PASSWORD, ENV_INFLUX_TOKEN, ENV_INFLUX_USER, output_secrets

__all__ = [
    "ENV_PASSWORD",
    "ENV_TOKEN",
    "ENV_USER",
    "InfluxAuthError",
    "InfluxConfigError",
    "InfluxError",
    "InfluxTarget",
]

ENV_TOKEN = ENV_INFLUX_TOKEN
ENV_USER = ENV_INFLUX_USER
ENV_PASSWORD = ENV_INFLUX_PASSWORD

# 5,000 lines per request is InfluxData's recommended batch size: large enough that the
# per-request cost vanishes (~0.5 MB before gzip), small enough for every server's body limit.
DEFAULT_BATCH_LINES = 5_000
# A partial batch waits at most 1 s: live dashboards refresh every 5 s.
DEFAULT_BATCH_AGE_S = 1.0
# A write that has not answered in 10 s is treated as failed and retried (writes are
# idempotent: the same series and timestamp overwrite the same values).
DEFAULT_TIMEOUT_S = 10.0


class InfluxError(Exception):
    """Base class of errors of the InfluxDB output."""


class InfluxConfigError(InfluxError, ValueError):
    """Invalid InfluxDB settings; the message says which and how to fix them."""


class InfluxAuthError(InfluxError):
    """The server refused the credentials (HTTP 401/403).

    Attributes:
        url: the server.
        status: 401 or 403.
        server_message: what the server said.
    """

    def __init__(self, url: str, status: int, server_message: str, credentials: str) -> None:
        self.url = url
        self.status = status
        self.server_message = server_message
        super().__init__(
            f"InfluxDB at {url} refused the write (HTTP {status}: {server_message}); sent "
            f"{credentials}. Set {ENV_TOKEN} to a token with write access, or {ENV_USER} and "
            f"{ENV_PASSWORD} for a user with write access (InfluxDB 1.x)"
        )


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    if value is None or isinstance(value, SecretStr):
        return value or None
    return SecretStr(value) if value else None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InfluxTarget:
    """Where and how to write. Validated on construction (:class:`InfluxConfigError`).

    ``token`` and ``password`` may be given as ``str``; they are kept as ``SecretStr``.
    """

    url: str
    """Server root, e.g. ``http://127.0.0.1:8086`` (a path prefix of a proxy is kept)."""
    mode: Literal["v1", "v2"] = "v1"
    database: str | None = None
    """v1: the database (must exist: ``CREATE DATABASE``)."""
    retention_policy: str | None = None
    """v1: the retention policy; None for the database's default."""
    org: str | None = None
    """v2: the organisation (name or id)."""
    bucket: str | None = None
    """v2: the bucket."""
    token: SecretStr | str | None = dataclasses.field(default=None, repr=False)
    """API token (v2; v1 on 2.x/3.x/Cloud), sent as ``Authorization: Token ..``."""
    username: str | None = None
    """v1: user for HTTP Basic authentication."""
    password: SecretStr | str | None = dataclasses.field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    gzip: bool = True
    batch_lines: int = DEFAULT_BATCH_LINES
    """Records per request (a heart-rate reading with RR intervals gives several lines)."""
    batch_age_s: float = DEFAULT_BATCH_AGE_S
    """How long a partial batch may wait for more records."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", _secret(self.token))
        object.__setattr__(self, "password", _secret(self.password))
        problems: list[str] = []
        try:
            parsed = urllib.parse.urlsplit(self.url)
            host = parsed.hostname
        except ValueError:
            parsed, host = urllib.parse.urlsplit(""), None
        if parsed.username is not None or parsed.password is not None:
            # never echo the URL: it holds a secret
            problems.append(
                f"the url must not carry credentials: set {ENV_TOKEN}, or {ENV_USER} and "
                f"{ENV_PASSWORD}, in the environment instead"
            )
        elif parsed.scheme not in ("http", "https") or not host:
            problems.append(f"url must look like http://HOST:PORT, not {self.url!r}")
        if parsed.query or parsed.fragment:
            problems.append("url must not carry a query or fragment (settings go in fields)")
        if self.mode == "v1":
            if not self.database:
                problems.append("mode v1 needs database")
            if self.org or self.bucket:
                problems.append("org and bucket are v2 settings; for v1 set database")
            if self.token and self.username:
                problems.append(f"set either a token or a user ({ENV_USER}), not both")
        elif self.mode == "v2":
            if not self.org or not self.bucket:
                problems.append("mode v2 needs org and bucket")
            if not self.token:
                problems.append(f"mode v2 needs a token (set {ENV_TOKEN})")
            if self.database or self.retention_policy:
                problems.append("database and retention_policy are v1 settings; for v2 set bucket")
            if self.username or self.password:
                problems.append("v2 authenticates with a token only, not user/password")
        else:
            problems.append(f"mode must be 'v1' or 'v2', not {self.mode!r}")
        if self.password and not self.username:
            problems.append(f"a password needs a user ({ENV_USER})")
        if not self.timeout_s > 0:
            problems.append("timeout_s must be > 0")
        if self.batch_lines < 1:
            problems.append("batch_lines must be >= 1")
        if not self.batch_age_s >= 0:
            problems.append("batch_age_s must be >= 0")
        if problems:
            raise InfluxConfigError("InfluxDB settings: " + "; ".join(problems))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **settings: Any) -> InfluxTarget:
        """Settings with credentials from the environment where ``settings`` has none.

        Reads ``STRIDEWATCH_INFLUX_TOKEN``, ``STRIDEWATCH_INFLUX_USER`` and
        ``STRIDEWATCH_INFLUX_PASSWORD`` (``environ`` defaults to ``os.environ``) through
        :func:`outputs.secrets.output_secrets`.
        """
        secrets = output_secrets(environ)
        found = {"token": secrets.influx_token, "username": secrets.influx_user,
                 "password": secrets.influx_password}  # fmt: skip
        for key, value in found.items():
            if settings.get(key) is None and value is not None:
                settings[key] = value
        return cls(**settings)

    @classmethod
    def build(
        cls,
        url: str,
        *,
        database: str | None = None,
        retention_policy: str | None = None,
        org: str | None = None,
        bucket: str | None = None,
        auth: Literal["none", "token", "password"] | None = None,
        environ: Mapping[str, str] | None = None,
        **settings: Any,
    ) -> InfluxTarget:
        """The target of the command line or the config file, in one place.

        The mode follows the settings: ``org``/``bucket`` → ``v2`` (``/api/v2/write``), else
        ``v1`` (``/write``, ``database`` default ``"stridewatch"``). ``auth`` picks the
        credentials taken from the environment: ``"token"``, ``"password"`` (user and
        password), ``"none"``; ``None`` (default) takes whatever the environment has (a token
        for v2). ``settings`` are the other fields (``timeout_s``, ``batch_lines``…).

        Raises:
            InfluxConfigError: invalid settings, or the credentials ``auth`` names are missing.
        """
        secrets = output_secrets(environ)
        v2 = org is not None or bucket is not None
        creds: dict[str, Any] = {}
        if auth == "token" or (auth is None and secrets.influx_token is not None):
            if secrets.influx_token is None:
                raise InfluxConfigError(f"InfluxDB settings: auth token needs {ENV_TOKEN} set")
            creds["token"] = secrets.influx_token
        elif auth == "password" or (auth is None and not v2 and secrets.influx_user):
            if not secrets.influx_user or secrets.influx_password is None:
                raise InfluxConfigError(
                    f"InfluxDB settings: auth password needs {ENV_USER} and {ENV_PASSWORD} set"
                )
            creds["username"] = secrets.influx_user
            creds["password"] = secrets.influx_password
        if v2:
            return cls(url=url, mode="v2", org=org, bucket=bucket, **creds, **settings)
        return cls(url=url, mode="v1", database=database or "stridewatch",
                   retention_policy=retention_policy, **creds, **settings)  # fmt: skip

    @property
    def write_path(self) -> str:
        """Path and query of the write endpoint."""
        prefix = urllib.parse.urlsplit(self.url).path.rstrip("/")
        if self.mode == "v2":
            params = {"org": self.org or "", "bucket": self.bucket or "", "precision": "ms"}
            return f"{prefix}/api/v2/write?{urllib.parse.urlencode(params)}"
        v1 = {"db": self.database or ""}
        if self.retention_policy:
            v1["rp"] = self.retention_policy
        v1["precision"] = "ms"
        return f"{prefix}/write?{urllib.parse.urlencode(v1)}"

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header, if any."""
        token, password = _secret(self.token), _secret(self.password)
        if token is not None:
            return {"Authorization": f"Token {token.get_secret_value()}"}
        if self.username:
            secret = password.get_secret_value() if password is not None else ""
            pair = f"{self.username}:{secret}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        return {}

    def credentials_description(self) -> str:
        """What credentials are sent, without secrets (for error messages)."""
        if self.token:
            return "a token"
        if self.username:
            return f"user {self.username!r} with a password" if self.password else (
                f"user {self.username!r} without a password"
            )
        return "no credentials"
