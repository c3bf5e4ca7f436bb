"""``stridewatch bridge`` and ``stridewatch worker``: the scale-out tier (issue #13,
docs/scaling.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

import platformdirs

from stridewatch.errors import RuntimeFailureError, UsageError
from stridewatch.options import EXIT_OK, add_influx, influx_target, mqtt_target


def _kafka(text: str) -> str:
    """``host:port[,host:port…]``: a bootstrap list, as Kafka clients take it."""
    for server in text.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise argparse.ArgumentTypeError(
                f"{server!r} is not host:port (e.g. 127.0.0.1:9092)")
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.05 <= value <= 60.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a period of 0.05 to 60 seconds")
    return value


def _partition(text: str) -> tuple[int, int]:
    """``I/N``: this bridge is number I (0-based) of N."""
    index, sep, count = text.partition("/")
    if sep and index.strip().isdigit() and count.strip().isdigit():
        i, n = int(index), int(count)
        if 0 <= i < n:
            return i, n
    raise argparse.ArgumentTypeError(f"{text!r} is not I/N with 0 <= I < N (e.g. 0/2 and 1/2 "
                                     "for two bridges)")


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (a librdkafka setting)")
    return key.strip(), value.strip()


def cmd_bridge(args: argparse.Namespace) -> int:
    from stridewatch.bridge import run_bridge

    mqtt = mqtt_target(args.mqtt)
    if mqtt is None:
        raise UsageError("bridge needs --mqtt URL (the broker the collectors publish to)")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"bridge {args.partition[0]}/{args.partition[1]}: MQTT {mqtt.url} → Kafka "
              f"{args.kafka} (Ctrl-C stops)", flush=True)
        counters = await run_bridge(mqtt, args.kafka, stop=stop, client_id=args.client_id,
                                    partition=args.partition,
                                    producer_extra=dict(args.producer_option))
        print(f"bridge: {counters.forwarded} reading(s) forwarded to Kafka and acknowledged "
              f"to MQTT, {counters.skipped} of other bridges' athletes, {counters.waits} "
              "wait(s) for the broker")

    asyncio.run(main())
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from processing.snapshot import SnapshotError
    from stridewatch.bridge import ensure_topic
    from stridewatch.worker import AthleteStep, WorkerOptions, build_app

    state_dir = Path(args.state_dir) if args.state_dir else (
        Path(platformdirs.user_data_dir("stridewatch")) / "worker-state")
    options = WorkerOptions(bootstrap=args.kafka, state_dir=state_dir,
                            influx=influx_target(args), mqtt=mqtt_target(args.mqtt),
                            consumer_group=args.group,
                            commit_interval_s=args.commit_interval,
                            consumer_extra=dict(args.consumer_option),
                            producer_extra=dict(args.producer_option))
    def took(athlete: str, applied: int) -> None:
        how = f"resumes after reading {applied} (state restored)" if applied else "starts"
        print(f"worker: athlete {athlete} {how}", flush=True)

    # A clear error for a wrong --kafka, before Quix (which would print a traceback).
    ensure_topic(args.kafka, extra={**options.producer_extra, **options.consumer_extra})
    step = AthleteStep(options.settings, on_restore=took)
    worker = build_app(options, step)
    print(f"worker: group {args.group} on {args.kafka}, state in {state_dir}"
          f"{', InfluxDB ' + options.influx.url if options.influx else ''}"
          f"{', MQTT ' + options.mqtt.url if options.mqtt else ''} (Ctrl-C stops)",
          flush=True)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            worker.app.run()  # Quix stops cleanly on SIGINT/SIGTERM, commits what it did
    except SnapshotError as exc:
        raise RuntimeFailureError(
            f"an athlete's state in Kafka cannot be read: {exc}. Nothing was committed past "
            "it; see docs/scaling.md, 'Upgrades'") from None
    except KafkaException as exc:
        raise RuntimeFailureError(
            f"Kafka at {args.kafka}: {exc.args[0] if exc.args else exc}; the worker stopped "
            "(what it committed is safe: another worker, or this one restarted, goes on from "
            "there)") from None
    finally:
        worker.close()
    c = step.counters
    print(f"worker: {c.readings} reading(s), {c.outputs} output(s), {c.restores} athlete "
          f"state restore(s), {c.repeats} repeated reading(s) dropped, {c.bad_payloads} "
          "undecodable reading(s)")
    return EXIT_OK


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bridge", help="MQTT readings → Kafka topic stridewatch.readings "
                                      "(keyed by athlete; several: --partition I/N)")
    p.add_argument("--mqtt", metavar="URL", required=True,
                   help="broker the collectors publish to (mqtt://host:port)")
    p.add_argument("--kafka", metavar="BOOTSTRAP", type=_kafka, required=True,
                   help="Kafka bootstrap servers, host:port[,host:port]")
    p.add_argument("--partition", type=_partition, default=(0, 1), metavar="I/N",
                   help="run N bridges: this one forwards the athletes whose hash modulo N is "
                        "I, keeping each athlete's readings in order (default 0/1: all)")
    p.add_argument("--client-id", help="MQTT client id of the bridge's persistent session "
                                       "(default stridewatch-bridge-I-of-N; keep it across "
                                       "restarts: the broker keeps the readings for it)")
    _add_kafka_options(p, consumer=False)
    p.set_defaults(func=cmd_bridge)

    p = sub.add_parser("worker", help="process readings from Kafka per athlete "
                                      "(Quix Streams; partitions move between workers)")
    p.add_argument("--kafka", metavar="BOOTSTRAP", type=_kafka, required=True,
                   help="Kafka bootstrap servers, host:port[,host:port]")
    p.add_argument("--group", default="stridewatch-workers",
                   help="consumer group: the workers that share the athletes")
    p.add_argument("--state-dir", help="local state (RocksDB; restored from Kafka's "
                                       "changelog when missing)")
    p.add_argument("--commit-interval", type=_seconds, default=1.0, metavar="SECONDS",
                   help="checkpoint period: InfluxDB and MQTT are written at each checkpoint, "
                        "so it bounds their latency; shorter means more commits and "
                        "changelog traffic (default 1.0)")
    add_influx(p)
    p.add_argument("--mqtt", metavar="URL",
                   help="publish alerts (QoS 1), telemetry and status here, as run does "
                        "(mqtt[s]://host:port; credentials from STRIDEWATCH_MQTT_USER/PASSWORD)")
    _add_kafka_options(p, consumer=True)
    p.set_defaults(func=cmd_worker)


def _add_kafka_options(p: argparse.ArgumentParser, *, consumer: bool) -> None:
    p.add_argument("--producer-option", type=_option, action="append", default=[],
                   metavar="KEY=VALUE", help="librdkafka producer setting (repeatable), e.g. "
                                             "security.protocol=SASL_SSL")
    if consumer:
        p.add_argument("--consumer-option", type=_option, action="append", default=[],
                       metavar="KEY=VALUE", help="librdkafka consumer setting (repeatable), "
                                                 "e.g. session.timeout.ms=10000")
