"""The deployment files in ``deploy/``: compose file, Mosquitto config + ACL, systemd unit, Grafana.

Nothing here builds images or needs Docker. The Mosquitto ACL is checked against Debian's real
``mosquitto`` 2.x started with ``deploy/mosquitto/mosquitto.conf`` itself (only the listener
port and the file paths are rewritten to a temporary directory); users are created with the real
``mosquitto_passwd``. Missing binaries fail the tests (never skip), naming the Debian package.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml
from mosquitto_server import find_mosquitto, free_port

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
MOSQUITTO_CONF = DEPLOY / "mosquitto" / "mosquitto.conf"
ACL = DEPLOY / "mosquitto" / "acl"
UNIT = DEPLOY / "systemd" / "stridewatch-gateway.service"
DATASOURCE = DEPLOY / "grafana" / "provisioning" / "datasources" / "influxdb.yaml"
DASHBOARD_PROVIDER = DEPLOY / "grafana" / "provisioning" / "dashboards" / "stridewatch.yaml"
DATASOURCE_UID = "stridewatch-influxql"
HOST = "127.0.0.1"

NOT_IN_REPO = {
    "mosquitto/passwd": DEPLOY / "mosquitto" / "README.md",
}
"""Bind-mount sources that are deliberately not in the repository, and the document that says
how the operator creates each one (secrets: never committed)."""

WAIT_S = 5.0
"""Bound on waiting for a message that must arrive."""


# ---------------------------------------------------------------------------------- helpers


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """``(source, target)`` of a service's bind mounts (short or long volume syntax)."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            if volume.get("type") != "bind":
                continue
            source, target = volume["source"], volume["target"]
        if source.startswith((".", "/")):
            out.append((source, target))
    return out


def named_volumes(service: dict[str, Any]) -> list[str]:
    out = []
    for volume in service.get("volumes", []):
        source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
        if source and not source.startswith((".", "/")):
            out.append(source)
    return out


def compose_variables(text: str) -> set[str]:
    """Names used as ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}`` (not ``$${...}``)."""
    return set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def env_example_keys() -> set[str]:
    keys = set()
    for line in (DEPLOY / ".env.example").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keys.add(line.split("=", 1)[0])
    return keys


def conf_directives(path: Path) -> list[list[str]]:
    """Uncommented Mosquitto config lines, split into words."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line.split())
    return out


# ------------------------------------------------------------------------- (1) compose.yaml


def test_compose_parses_and_every_bind_mount_exists() -> None:
    services = compose()["services"]
    assert set(services) == {"mosquitto", "influxdb", "grafana", "stridewatch-sink",
                             "kafka", "stridewatch-bridge", "stridewatch-worker"}
    missing = set()
    for name, service in services.items():
        for source, _target in bind_mounts(service):
            assert not source.startswith("/"), f"{name}: absolute bind source {source}"
            if not (DEPLOY / source).exists():
                missing.add(os.path.normpath(source))
    assert missing == set(NOT_IN_REPO), (
        f"bind-mount sources missing from the repository: {sorted(missing)}; the documented "
        f"exceptions are exactly {sorted(NOT_IN_REPO)}"
    )
    for source, doc in NOT_IN_REPO.items():
        assert Path(source).name in doc.read_text(encoding="utf-8"), f"{doc} must explain {source}"
    readme = NOT_IN_REPO["mosquitto/passwd"].read_text(encoding="utf-8")
    assert "mosquitto_passwd -c" in readme


def test_compose_build_volumes_and_variables_are_consistent() -> None:
    data = compose()
    services = data["services"]
    # The sink image is built from the repository root with deploy/Dockerfile.
    build = services["stridewatch-sink"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == REPO
    dockerfile = context / build["dockerfile"]
    assert dockerfile.is_file()
    docker_text = dockerfile.read_text(encoding="utf-8")
    assert docker_text.startswith("#")
    assert "FROM python:3.11-slim" in docker_text
    assert "pip install ." in docker_text
    # Named volumes are declared.
    declared = set(data.get("volumes") or {})
    used = {v for s in services.values() for v in named_volumes(s)}
    assert used == declared
    # Every ${VAR} comes from .env (documented in .env.example) and nothing else is there.
    assert compose_variables(COMPOSE.read_text(encoding="utf-8")) == env_example_keys()
    # No secret is written into the compose file itself.
    for service in services.values():
        env = service.get("environment", {})
        assert isinstance(env, dict)
        for key, value in env.items():
            if re.search(r"PASSWORD|TOKEN", key):
                assert str(value).startswith("${"), f"{key} must come from .env"


def test_compose_wires_the_services_together() -> None:
    services = compose()["services"]
    # Mosquitto: the config's password_file and acl_file are where compose mounts them.
    mounts = {Path(s).name: t for s, t in bind_mounts(services["mosquitto"])}
    directives = {d[0]: d[1:] for d in conf_directives(MOSQUITTO_CONF)}
    assert mounts["mosquitto.conf"] == "/mosquitto/config/mosquitto.conf"
    assert directives["password_file"] == [mounts["passwd"]]
    assert directives["acl_file"] == [mounts["acl"]]
    assert directives["allow_anonymous"] == ["false"]
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    # InfluxDB: initial setup from .env and the DBRP script in the init directory.
    influx = services["influxdb"]
    assert influx["image"].startswith("influxdb:2")
    for key in ("MODE", "USERNAME", "PASSWORD", "ORG", "BUCKET", "ADMIN_TOKEN"):
        assert f"DOCKER_INFLUXDB_INIT_{key}" in influx["environment"]
    script_mounts = [(s, t) for s, t in bind_mounts(influx) if s.endswith("init-dbrp.sh")]
    assert len(script_mounts) == 1
    source, target = script_mounts[0]
    assert target.startswith("/docker-entrypoint-initdb.d/")
    script = DEPLOY / source
    assert os.access(script, os.X_OK)
    text = script.read_text(encoding="utf-8")
    assert "influx v1 dbrp create" in text
    assert "DOCKER_INFLUXDB_INIT_BUCKET_ID" in text
    assert "STRIDEWATCH_INFLUXQL_DB" in influx["environment"]
    subprocess.run(["sh", "-n", str(script)], check=True, timeout=10)
    # Grafana: 11.x, provisioning + generated dashboards where the provider looks for them.
    grafana = services["grafana"]
    assert re.match(r"grafana/grafana(-oss)?:11\.", grafana["image"])
    grafana_mounts = dict(bind_mounts(grafana))
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    dashboards_target = grafana_mounts["../dashboards/generated"]
    assert home.startswith(dashboards_target + "/")
    assert (REPO / "dashboards" / "generated" / Path(home).name).is_file()
    assert grafana_mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = load_yaml(DASHBOARD_PROVIDER)["providers"][0]
    assert grafana_mounts["../dashboards/generated"] == provider["options"]["path"]
    # The sink: the CLI the gateway image runs.
    sink = services["stridewatch-sink"]
    command = sink["command"]
    assert command[:2] == ["stridewatch", "sink"]
    flags = dict(zip(command[2::2], command[3::2], strict=True))
    assert flags["--mqtt"] == "mqtt://mosquitto:1883"
    assert flags["--influx"] == "http://influxdb:8086"
    assert {"--influx-org", "--influx-bucket"} <= set(flags)
    credentials = {"STRIDEWATCH_MQTT_USER", "STRIDEWATCH_MQTT_PASSWORD", "STRIDEWATCH_INFLUX_TOKEN"}
    assert credentials <= set(sink["environment"])


def test_compose_scale_profile_runs_our_bridge_and_workers_on_kafka() -> None:
    """The optional scale-out tier (issue #13): only with ``--profile scale``; the commands
    parse with our own CLI parser and point at the compose services."""
    from stridewatch.cli import build_parser

    services = compose()["services"]
    scale = {name for name, s in services.items() if "scale" in s.get("profiles", [])}
    assert scale == {"kafka", "stridewatch-bridge", "stridewatch-worker"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    for name, subcommand in (("stridewatch-bridge", "bridge"), ("stridewatch-worker", "worker")):
        command = [str(part) for part in services[name]["command"]]
        assert command[:2] == ["stridewatch", subcommand]
        args = build_parser().parse_args(
            [c.replace("${INFLUX_ORG:?set INFLUX_ORG in deploy/.env}", "org")
              .replace("${INFLUX_BUCKET:?set INFLUX_BUCKET in deploy/.env}", "bucket")
             for c in command[1:]])
        assert f"PLAINTEXT://{args.kafka}" == advertised
        assert services[name]["image"] == services["stridewatch-sink"]["image"]
        if subcommand == "worker":  # alerts and status for the dashboards, as run does
            assert args.mqtt == "mqtt://mosquitto:1883"
            assert {"STRIDEWATCH_MQTT_USER", "STRIDEWATCH_MQTT_PASSWORD"} <= set(
                services[name]["environment"])
    acl = (DEPLOY / "mosquitto" / "acl").read_text(encoding="utf-8")
    assert "user bridge\ntopic read stridewatch/v1/+/readings\n" in acl
    worker = acl.split("user worker\n")[1].split("\n\n")[0].splitlines()
    assert "topic write stridewatch/v1/+/alert" in worker
    assert not any("readings" in rule or "read " in rule for rule in worker)


# -------------------------------------------------------------------- (2) Mosquitto + ACL

PASSWORDS = {"athlete-a": "pw-athlete-a", "athlete-b": "pw-athlete-b", "sink": "pw-sink",
             "grafana": "pw-grafana"}


def find_mosquitto_passwd() -> str:
    for candidate in (shutil.which("mosquitto_passwd"), "/usr/bin/mosquitto_passwd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "mosquitto_passwd not found: install Debian's mosquitto package "
        "(apt-get install mosquitto)"
    )


def deploy_config_for_test(workdir: Path, port: int) -> str:
    """``deploy/mosquitto/mosquitto.conf`` with the listener and file paths moved to ``workdir``.

    Only these directives change; everything else (allow_anonymous, persistence, queues,
    logging) is the deployed configuration. Each rewritten directive must appear exactly once.
    """
    rewrites = {
        "listener": f"listener {port} {HOST}",
        "password_file": f"password_file {workdir / 'passwd'}",
        "acl_file": f"acl_file {workdir / 'acl'}",
        "persistence_location": f"persistence_location {workdir / 'data'}/",
    }
    seen: dict[str, int] = dict.fromkeys(rewrites, 0)
    lines = []
    for words in conf_directives(MOSQUITTO_CONF):
        if words[0] in rewrites:
            seen[words[0]] += 1
            lines.append(rewrites[words[0]])
        else:
            lines.append(" ".join(words))
    assert seen == dict.fromkeys(rewrites, 1), f"expected each of {list(rewrites)} once: {seen}"
    if os.geteuid() == 0:
        # As root, mosquitto drops to the 'mosquitto' user, which cannot read our temp dir.
        lines.append("user root")
    return "\n".join(lines) + "\n"


class DeployBroker:
    """Debian's mosquitto running the deploy configuration on a free loopback port."""

    def __init__(self, workdir: Path) -> None:
        self.binary = find_mosquitto()
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None

    def prepare(self) -> None:
        (self.workdir / "data").mkdir(parents=True)
        shutil.copy(ACL, self.workdir / "acl")
        passwd_bin = find_mosquitto_passwd()
        passwd = self.workdir / "passwd"
        for i, (user, password) in enumerate(PASSWORDS.items()):
            args = [passwd_bin, *(["-c"] if i == 0 else []), "-b", str(passwd), user, password]
            subprocess.run(args, check=True, timeout=10, capture_output=True)
        (self.workdir / "mosquitto.conf").write_text(
            deploy_config_for_test(self.workdir, self.port)
        )

    def log_tail(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        return "(no log)"

    def start(self) -> None:
        self.prepare()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.workdir / "mosquitto.conf")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto with the deploy config exited ({self.process.returncode}):\n"
                    f"{self.log_tail()}"
                )
            with contextlib.suppress(OSError), socket.create_connection(
                (HOST, self.port), timeout=0.5
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{self.log_tail()}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


@pytest.fixture
def deploy_broker(tmp_path: Path) -> Iterator[DeployBroker]:
    broker = DeployBroker(tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextlib.asynccontextmanager
async def connect(broker: DeployBroker, user: str | None, password: str | None = None,
                  ) -> AsyncIterator[aiomqtt.Client]:
    if user is not None and password is None:
        password = PASSWORDS[user]
    client = aiomqtt.Client(HOST, broker.port, username=user, password=password,
                            identifier=f"test-deploy-{user}-{os.urandom(3).hex()}", timeout=5)
    async with client:
        yield client


async def collect_until(client: aiomqtt.Client, sentinel: bytes) -> list[tuple[str, bytes]]:
    """Messages received up to and including ``sentinel`` (waiting at most ``WAIT_S``).

    The sentinel is published last, and a subscriber receives in order: anything that must not
    arrive and was published before it would be in the list. No "quiet period" is needed.
    """
    received: list[tuple[str, bytes]] = []
    with contextlib.suppress(TimeoutError):  # a missing sentinel shows in the returned list
        async with asyncio.timeout(WAIT_S):
            async for message in client.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                received.append((message.topic.value, payload))
                if payload == sentinel:
                    break
    return received


async def received_before_round_trip(client: aiomqtt.Client, topic: str
                                     ) -> list[tuple[str, bytes]]:
    """What ``client`` was sent before a SUBSCRIBE round trip to the broker, for a client that
    may read nothing (so no sentinel can reach it).

    Mosquitto is one thread and writes to each client in order: a message it queued for
    ``client`` before handling the SUBSCRIBE reaches ``client`` before the SUBACK, and aiomqtt
    queues each message as it reads it, so by the time ``subscribe`` returns it is in
    ``client.messages``.
    """
    await client.subscribe(topic, qos=1)  # again: same subscription, and no retained messages
    received: list[tuple[str, bytes]] = []
    async with asyncio.timeout(WAIT_S):
        for _ in range(len(client.messages)):
            message = await anext(client.messages)
            payload = message.payload
            assert isinstance(payload, bytes)
            received.append((message.topic.value, payload))
    return received


def granted(result: Any) -> list[int]:
    return [int(getattr(rc, "value", rc)) for rc in result]


async def test_mosquitto_deploy_config_enforces_the_acl(deploy_broker: DeployBroker) -> None:
    # No anonymous clients, no wrong passwords.
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed"):
        async with connect(deploy_broker, None):
            pass
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed"):
        async with connect(deploy_broker, "athlete-a", "wrong password"):
            pass

    own = "stridewatch/v1/athlete-a/readings"
    foreign = "stridewatch/v1/athlete-b/readings"
    async with (
        connect(deploy_broker, "sink") as sink_plain,
        connect(deploy_broker, "sink") as sink_shared,
        connect(deploy_broker, "athlete-b") as nosy_gateway,
        connect(deploy_broker, "athlete-a") as gateway_a,
        connect(deploy_broker, "sink") as sink_writer,
        connect(deploy_broker, "grafana") as grafana,
    ):
        assert granted(await sink_plain.subscribe("stridewatch/v1/+/readings", qos=1)) == [1]
        # Mosquitto 2.0 grants the shared subscription with only "topic read stridewatch/v1/#"
        # in the ACL: no "$share/..." rule is needed (delivery is checked on the real topic).
        assert granted(
            await sink_shared.subscribe("$share/g/stridewatch/v1/+/readings", qos=1)
        ) == [1]
        # A gateway may subscribe to everything (2.0 does not refuse it) but receives nothing.
        await nosy_gateway.subscribe("stridewatch/v1/#", qos=1)

        # Denied publishes (each acknowledged by the broker before the next line runs).
        await gateway_a.publish(foreign, b"forged by athlete-a", qos=1)
        await sink_writer.publish(own, b"forged by the sink", qos=1)
        await grafana.publish(own, b"forged by grafana", qos=1)
        await gateway_a.publish(foreign, b"forged by athlete-a, QoS 0", qos=0)
        # Allowed, last: every subscriber receives in order, so anything forged that got
        # through would arrive before this sentinel.
        await gateway_a.publish(own, b"sentinel", qos=1)

        plain, shared = await asyncio.gather(
            collect_until(sink_plain, b"sentinel"),
            collect_until(sink_shared, b"sentinel"),
        )
        # The broker handled the sentinel for every subscriber at once (before acknowledging
        # it): had athlete-b been allowed to read athlete-a, its copies would be queued for it
        # by now, so they would reach it before the answer to a later request of its own.
        nosy = await received_before_round_trip(nosy_gateway, "stridewatch/v1/#")

    log = deploy_broker.log_tail()
    assert plain == [(own, b"sentinel")], log
    assert shared == [(own, b"sentinel")], log
    assert nosy == [], log


# -------------------------------------------------------------------------- (3) systemd unit


def test_systemd_unit_has_the_required_settings(tmp_path: Path) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT, encoding="utf-8")
    assert set(parser.sections()) == {"Unit", "Service", "Install"}
    service = parser["Service"]
    expected = {
        "ExecStart": "/opt/stridewatch/.venv/bin/stridewatch run --config "
                     "/etc/stridewatch/stridewatch.toml",
        "Restart": "on-failure",
        "RestartSec": "5",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "StateDirectory": "stridewatch",
        "ReadWritePaths": "/var/lib/stridewatch",
        "SupplementaryGroups": "bluetooth",
        "EnvironmentFile": "/etc/stridewatch/env",
        "User": "stridewatch",
    }
    assert {k: service.get(k) for k in expected} == expected
    families = service["RestrictAddressFamilies"].split()
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= set(families)  # AF_UNIX: D-Bus to BlueZ
    assert "bluetooth" in parser["Unit"]["After"]
    assert parser["Install"]["WantedBy"] == "multi-user.target"
    text = UNIT.read_text(encoding="utf-8")
    assert not re.search(r"^Environment=.*(PASSWORD|TOKEN)", text, re.MULTILINE), "secrets!"

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return  # optional: the INI checks above are the test
    copy = tmp_path / UNIT.name
    shutil.copy(UNIT, copy)
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                            timeout=30, check=False)
    problems = [
        line for line in (result.stdout + result.stderr).splitlines()
        # The gateway's venv is not installed on the test machine.
        if line.strip() and "/opt/stridewatch/.venv/bin/stridewatch is not executable" not in line
    ]
    assert problems == [], "\n".join(problems)


# ------------------------------------------------------------------ (4) Grafana provisioning


def test_grafana_provisioning_parses_and_uses_the_stridewatch_datasource() -> None:
    data = load_yaml(DATASOURCE)
    assert data["apiVersion"] == 1
    [source] = data["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "influxdb"
    assert source["access"] == "proxy"
    assert source["url"] == "http://influxdb:8086"
    assert source["jsonData"]["version"] == "InfluxQL"
    # InfluxDB 2's InfluxQL compatibility API: the token as an Authorization header.
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    header = source["secureJsonData"]["httpHeaderValue1"]
    assert re.fullmatch(r"Token \$\{[A-Z_]+\}", header)
    # Every variable Grafana expands in the file is in Grafana's environment in compose.yaml.
    grafana_env = compose()["services"]["grafana"]["environment"]
    assert compose_variables(DATASOURCE.read_text(encoding="utf-8")) <= set(grafana_env)

    provider = load_yaml(DASHBOARD_PROVIDER)
    assert provider["apiVersion"] == 1
    [entry] = provider["providers"]
    assert entry["type"] == "file"
    assert entry["options"]["path"].startswith("/var/lib/grafana/")

    # Generated dashboards (when present) use only this data source (or a variable of it).
    for path in sorted((REPO / "dashboards" / "generated").glob("*.json")):
        refs = list(datasource_refs(json.loads(path.read_text(encoding="utf-8"))))
        assert refs, f"{path}: no data source references"
        for ref in refs:
            if isinstance(ref, dict):
                assert ref.get("uid") == DATASOURCE_UID or str(ref.get("uid", "")).startswith(
                    "$"), f"{path}: {ref}"


def datasource_refs(node: Any) -> Iterator[Any]:
    """Every ``"datasource"`` value in a dashboard's JSON."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            yield from datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_refs(item)
