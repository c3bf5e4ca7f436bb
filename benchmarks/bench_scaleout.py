"""Benchmark: the scale-out tier under load: real-time capacity of one worker, scaling to two
workers, and recovery when a worker dies (issue #13).

Everything runs on loopback: a Tansu broker (``tests/kafka_server.py``, in memory), workers as
``python -m stridewatch worker`` child processes (the command an operator runs, with
``--producer-option batch.num.messages=1`` for Tansu and a 6 s session timeout), and this
process as the load (a producer) and the dashboard (a consumer of ``stridewatch.metrics`` and
``stridewatch.alerts``). Load is synthetic, from :mod:`benchmarks.records` (not bumble):
``BASE_ATHLETES`` simulated athletes doing :func:`~benchmarks.records.mix_workout` (HR 1 Hz +
footpod 2 Hz, 3 readings/s, after the 6 readings a collector emits on connect), reused under
new names for as many athletes as a run needs. Athlete ``i`` goes to partition ``i % 4`` of
``stridewatch.readings`` (4 partitions), so the load is spread evenly and the benchmark knows
which athletes a partition holds.

Latency is end to end as a dashboard sees it: each reading is produced at its due time (the
athlete's workout time plus a per-athlete start offset, on the wall clock) with that due time
as the Kafka message timestamp; Quix gives every output the timestamp of its input message, so
an output's latency is its arrival at the consumer minus its reading's due time (one clock: one
machine), producer lag included. Outputs that never arrive count as infinitely late.

The cores each process used while measuring (``/proc/PID/stat``) are reported with the
figures: on Tansu the worker is bound by the broker's handling of its single-record produce
requests (``batch.num.messages=1``), not by its own CPU. A run with several workers is tried
once more on a fresh broker if a worker crashes; crashes are listed in ``worker_crashes``.

Figures:

``worker_athletes_realtime``
    The most athletes one worker keeps in real time: p99 of that latency ≤ 1 s over a
    ``RT_WINDOW_S`` window after ``RT_WARMUP_S`` of warm-up (athletes start spread over
    ``RT_STAGGER_S``), and no growing backlog (median latency of the window's last third at
    most 0.25 s above its first third). N is searched by doubling from ``RT_START`` then
    bisecting, within ``RT_BUDGET_S``; each step on a fresh broker and worker (Tansu slows
    down as its in-memory log fills: the same load measured again on a used broker fails).
    Baseline, same run: :meth:`Pipeline.process` in one loop on the same kind of load (no
    Kafka, no state, no encoding), its readings/s ÷ 3.
``worker_scaling``
    Readings/s through 2 workers vs 1 on a pre-produced backlog (``SCALING_ATHLETES`` ×
    ``SCALING_DURATION_S``), from the first output of the backlog to the last, each on a fresh
    broker, produced once the group has settled (probe readings seen by every worker).
    Diagnostic extra: 1 worker without ``batch.num.messages=1`` (not usable on Tansu: Quix's
    changelog recovery needs exact offsets), to show what that option costs.
``rebalance_recovery_s``
    Two workers on a live paced load; one is SIGKILLed; seconds from the kill until the
    survivor emits outputs for every partition the dead worker had (an output that repeats one
    already seen, goes back in time, or is for a reading produced after the kill: only the
    survivor can emit it). Extras: when those outputs are back within 1 s of real time, and
    the survivor's own pause (the eager rebalance) and when it began.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.records import ARRIVAL_LAG_S, MONO0, athlete_records, mix_trace  # noqa: E402
from outputs.mqtt_codec import decode_reading, encode_reading  # noqa: E402
from processing.pipeline import Pipeline  # noqa: E402
from stridewatch.worker import (  # noqa: E402
    ALERTS_TOPIC,
    METRICS_TOPIC,
    READINGS_TOPIC,
)
from stridewatch.worker import PARTITIONS as OUTPUT_PARTITIONS  # noqa: E402
from tests.kafka_server import TansuServer  # noqa: E402

INPUT_PARTITIONS: Final = 4
READINGS_PER_ATHLETE_S: Final = 3.0
TANSU_PRODUCER: Final = {"batch.num.messages": 1}  # exact offsets on Tansu (tests/kafka_server.py)
FAST_GROUP: Final = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
READER_FETCH_WAIT_MS: Final = 20
"""The dashboard consumer's ``fetch.wait.max.ms``: Tansu holds a fetch for the full wait even
when data is there (a 500 ms default would add up to 0.5 s to every latency)."""
BASE_ATHLETES: Final = 16
BASE_DURATION_S: Final = 120.0

LATENCY_BOUND_S: Final = 1.0
RT_WARMUP_S: Final = 5.0
RT_WINDOW_S: Final = 15.0
RT_START: Final = 100
RT_ROUND: Final = 25
RT_BUDGET_S: Final = 150.0
RT_STEP_S: Final = 30.0
"""About one step: a fresh broker and worker (~7 s to take partitions), warm-up, window."""
RT_STAGGER_S: Final = 2.0
"""Athletes start spread over this long (phase ``i / N × RT_STAGGER_S``), not all at once."""
RT_HOPELESS_S: Final = 5.0
"""A step stops at once when any output is this late (the worker is far behind)."""
RT_TREND_S: Final = 0.25
BASELINE_ATHLETES: Final = 200

SCALING_ATHLETES: Final = 32
SCALING_DURATION_S: Final = 120.0

REBALANCE_ATHLETES: Final = 40
REBALANCE_STEADY_S: Final = 4.0
"""Live load before the kill, once every athlete has outputs (covers a commit, 1 s)."""
REBALANCE_WAIT_S: Final = 40.0

READY_WAIT_S: Final = 60.0
DRAIN_QUIET_S: Final = 1.5
DRAIN_WAIT_S: Final = 30.0
BACKLOG_WAIT_S: Final = 120.0
STOP_WAIT_S: Final = 20.0
ATTEMPTS: Final = 2
"""Runs with several workers are tried again, on a fresh broker, when a worker crashes."""

Item = tuple[float, int, bytes, bytes, int]
"""A scheduled reading: (due offset s, partition, key, payload, outputs it gives)."""


def _log(text: str) -> None:
    print(f"  scaleout: {text}", file=sys.stderr, flush=True)


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (Linux ``/proc``; 0 when
    unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Cores each named process used since the meter was made (CPU seconds / wall seconds)."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.started = time.monotonic()
        self.cpu = {name: _cpu_s(pid) for name, pid in pids.items()}

    def cores(self) -> dict[str, float]:
        wall = max(1e-3, time.monotonic() - self.started)
        return {name: round((_cpu_s(pid) - self.cpu[name]) / wall, 2)
                for name, pid in self.pids.items()}


# -- load ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseAthlete:
    """One simulated athlete's readings under a placeholder name, ready to be renamed."""

    placeholder: bytes
    times: list[float]
    """Workout time (s) of each reading."""
    payloads: list[bytes]
    outputs: list[int]
    """Outputs :meth:`Pipeline.process` gives for each reading (the worker gives the same)."""

    def renamed(self, payload: bytes, athlete: bytes) -> bytes:
        return payload.replace(b'"athlete":"' + self.placeholder + b'"',
                               b'"athlete":"' + athlete + b'"', 1)


def _bases(count: int, duration_s: float) -> list[BaseAthlete]:
    bases = []
    for k in range(count):
        name = f"base{k:02d}"
        readings = athlete_records(mix_trace(k), athlete=name, index=k, duration_s=duration_s)
        pipeline = Pipeline()
        bases.append(BaseAthlete(
            placeholder=name.encode(),
            times=[round(r.time_mono_s - MONO0 - ARRIVAL_LAG_S, 6) for r in readings],
            payloads=[encode_reading(r).payload for r in readings],
            outputs=[len(pipeline.process(r)) for r in readings]))
    return bases


def _schedule(bases: Sequence[BaseAthlete], names: Sequence[str], duration_s: float,
              *, stagger_s: float = 1.0) -> list[Item]:
    """Every reading of ``names`` over ``duration_s`` of workout (athlete ``i``: base
    ``i % len(bases)``, partition ``i % 4``, starting ``i / len(names) × stagger_s`` s in), by
    due offset."""
    items: list[Item] = []
    for i, name in enumerate(names):
        base = bases[i % len(bases)]
        key = name.encode()
        phase = i / len(names) * stagger_s
        for t, payload, outputs in zip(base.times, base.payloads, base.outputs, strict=True):
            if t > duration_s:
                break
            items.append((phase + t, i % INPUT_PARTITIONS, key, base.renamed(payload, key),
                          outputs))
    items.sort(key=lambda item: item[0])
    return items


def _producer(bootstrap: str, **extra: Any) -> Any:
    from confluent_kafka import Producer

    # As the bridge produces (stridewatch.bridge.KafkaReadingProducer).
    return Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                     "linger.ms": 5, "queue.buffering.max.messages": 200_000, **extra})


def _produce_now(bootstrap: str, items: Iterable[Item]) -> int:
    """Produce ``items`` as fast as possible (timestamps: now); how many."""
    producer = _producer(bootstrap, **{"linger.ms": 20})
    count = 0
    for _, partition, key, value, _ in items:
        while True:
            try:
                producer.produce(READINGS_TOPIC, key=key, value=value, partition=partition)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 1000 == 0:
            producer.poll(0)
    if producer.flush(30):
        raise RuntimeError("readings not acknowledged by the broker within 30 s")
    return count


class PacedProducer(threading.Thread):
    """Produces each scheduled reading at its due time (wall clock), with the due time (ms)
    as its Kafka timestamp; stops at the end of the schedule or when ``stop`` is set."""

    def __init__(self, bootstrap: str, items: Sequence[Item], start_at: float) -> None:
        super().__init__(name="paced-producer", daemon=True)
        self.bootstrap = bootstrap
        self.items = items
        self.start_at = start_at
        self.stop_event = threading.Event()
        self.produced = 0
        self.lags_s: list[float] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the caller
            self.error = exc

    def _run(self) -> None:
        producer = _producer(self.bootstrap)
        try:
            for offset, partition, key, value, _ in self.items:
                if self.stop_event.is_set():
                    break
                due = self.start_at + offset
                wait = due - time.time()
                if wait > 0.0005:
                    time.sleep(wait)
                while True:
                    try:
                        producer.produce(READINGS_TOPIC, key=key, value=value,
                                         partition=partition, timestamp=int(due * 1000))
                        break
                    except BufferError:
                        producer.poll(0.01)
                self.produced += 1
                if self.produced % 64 == 0:
                    producer.poll(0)
                    self.lags_s.append(time.time() - due)
        finally:
            producer.flush(10)

    def finish(self) -> None:
        self.stop_event.set()
        self.join(15)


# -- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    key: bytes
    timestamp_s: float
    """The reading's due time (the input message's timestamp, passed on by Quix)."""
    arrival_s: float
    value: bytes

    @property
    def latency_s(self) -> float:
        return self.arrival_s - self.timestamp_s


class OutputReader:
    """The dashboard: reads ``stridewatch.metrics`` and ``stridewatch.alerts`` from the start
    (create it before any worker writes)."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-reader",
                                   "enable.auto.commit": False,
                                   "fetch.wait.max.ms": READER_FETCH_WAIT_MS})
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                               for topic in (METRICS_TOPIC, ALERTS_TOPIC)
                               for p in range(OUTPUT_PARTITIONS)])

    def read(self, timeout_s: float = 0.02) -> list[Output]:
        messages = self._consumer.consume(num_messages=5000, timeout=timeout_s)
        arrival = time.time()
        out = []
        for message in messages:
            if message.error():
                continue
            out.append(Output(message.key() or b"", message.timestamp()[1] / 1000, arrival,
                              message.value() or b""))
        return out

    def close(self) -> None:
        self._consumer.close()


def _drain(reader: OutputReader, prefix: bytes, quiet_s: float = DRAIN_QUIET_S,
           wait_s: float = DRAIN_WAIT_S) -> None:
    """Read until no output of ``prefix`` athletes came for ``quiet_s`` (bounded)."""
    deadline = time.monotonic() + wait_s
    last = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last < quiet_s:
        if any(o.key.startswith(prefix) for o in reader.read(0.05)):
            last = time.monotonic()


# -- workers ------------------------------------------------------------------------------------


class WorkerCrashError(RuntimeError):
    """A worker process exited on its own."""

    def __init__(self, name: str, code: int, log: str) -> None:
        errors = [line for line in log.splitlines() if "Error" in line or "ERROR" in line]
        self.summary = f"{name} exited with status {code}" + (
            f": {errors[0].strip()} ... {errors[-1].strip()}" if errors else "")
        super().__init__(f"worker {name} exited ({code}):\n{log[-3000:]}")


T = TypeVar("T")


def _retrying(label: str, measure: Callable[[int], T], crashes: list[str]) -> T:
    """``measure(attempt)``, again (up to :data:`ATTEMPTS`) when a worker crashed; each crash
    is appended to ``crashes``."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return measure(attempt)
        except WorkerCrashError as exc:
            crashes.append(exc.summary)
            _log(f"{label}: attempt {attempt}: a worker crashed: {exc}")
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


class WorkerProcess:
    """``python -m stridewatch worker`` as a child process, its output in a log file."""

    def __init__(self, bootstrap: str, workdir: Path, name: str,
                 producer_options: dict[str, int] = TANSU_PRODUCER) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = workdir / f"{name}.log"
        options = [f"--producer-option={k}={v}" for k, v in producer_options.items()]
        options += [f"--consumer-option={k}={v}" for k, v in FAST_GROUP.items()]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stridewatch", "worker", "--kafka", bootstrap,
                 "--state-dir", str(workdir / f"{name}-state"), *options],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
                env={**os.environ, "PYTHONWARNINGS": "ignore"})

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise WorkerCrashError(self.name, code, self.text())

    def athletes(self) -> set[str]:
        """Athletes this worker took up (its ``on_restore`` lines)."""
        return set(re.findall(r"^worker: athlete (\S+) ", self.text(), re.MULTILINE))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(STOP_WAIT_S)

    def stop(self) -> int | None:
        """SIGTERM (Quix commits and exits), bounded; the readings it reports, if any."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_WAIT_S)
        found = re.search(r"^worker: (\d+) reading\(s\)", self.text(), re.MULTILINE)
        return int(found.group(1)) if found else None


def _wait_ready(bootstrap: str, reader: OutputReader, workers: Sequence[WorkerProcess],
                base: BaseAthlete) -> None:
    """Until every worker holds partitions and outputs flow: a probe athlete per partition
    sends a reading every 0.25 s until each worker has taken up a probe, every probe is taken
    and the reader has seen a probe's output (bounded by :data:`READY_WAIT_S`)."""
    probes = [f"probe-{p}" for p in range(INPUT_PARTITIONS)]
    producer = _producer(bootstrap)
    deadline = time.monotonic() + READY_WAIT_S
    seen_output = False
    try:
        for j in range(len(base.payloads)):
            for p, probe in enumerate(probes):
                key = probe.encode()
                producer.produce(READINGS_TOPIC, key=key, partition=p,
                                 value=base.renamed(base.payloads[j], key))
            producer.poll(0)
            until = time.monotonic() + 0.25
            while time.monotonic() < until:
                seen_output |= any(o.key.startswith(b"probe-") for o in reader.read(0.05))
            for worker in workers:
                worker.check_alive()
            taken = [w.athletes() for w in workers]
            if (seen_output and all(any(a.startswith("probe-") for a in t) for t in taken)
                    and set(probes) <= set().union(*taken)):
                _drain(reader, b"probe-", quiet_s=0.5)
                return
            if time.monotonic() > deadline:
                break
    finally:
        producer.flush(10)
    raise RuntimeError(f"workers not all assigned within {READY_WAIT_S:.0f} s:\n"
                       + "\n".join(w.text()[-1000:] for w in workers))


# -- 1: athletes one worker keeps in real time ----------------------------------------------------


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return math.inf
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1)]


@dataclass
class StepResult:
    athletes: int
    ok: bool = False
    p50_s: float | None = None
    p99_s: float | None = None
    expected: int = 0
    late: int = 0
    trend_s: float | None = None
    producer_lag_p99_ms: float | None = None
    stopped_after_s: float | None = None
    reason: str = ""
    cpu_cores: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        def r(x: float | None, digits: int = 3) -> float | None:
            return None if x is None or math.isinf(x) else round(x, digits)

        return {"athletes": self.athletes, "ok": self.ok, "p50_s": r(self.p50_s),
                "p99_s": r(self.p99_s), "window_outputs": self.expected,
                "late_outputs": self.late, "trend_s": r(self.trend_s),
                "producer_lag_p99_ms": r(self.producer_lag_p99_ms, 1),
                "stopped_after_s": r(self.stopped_after_s, 1), "reason": self.reason,
                "cpu_cores": self.cpu_cores}


def _realtime_step(bootstrap: str, reader: OutputReader, worker: WorkerProcess,
                   bases: Sequence[BaseAthlete], n: int,
                   pids: dict[str, int | None]) -> StepResult:
    result = StepResult(n)
    prefix = f"n{n}-"
    items = _schedule(bases, [f"{prefix}{i}" for i in range(n)], RT_WARMUP_S + RT_WINDOW_S,
                      stagger_s=RT_STAGGER_S)
    start = time.time() + 0.3
    window = (start + RT_WARMUP_S, start + RT_WARMUP_S + RT_WINDOW_S)
    result.expected = sum(item[4] for item in items
                          if RT_WARMUP_S <= item[0] < RT_WARMUP_S + RT_WINDOW_S)
    producer = PacedProducer(bootstrap, items, start)
    producer.start()
    latencies: list[tuple[float, float]] = []  # (due, latency) of window outputs
    key_prefix = prefix.encode()
    end = window[1] + LATENCY_BOUND_S + 0.3  # on-time outputs of the last readings are in
    meter: CpuMeter | None = None
    try:
        while time.time() < end:
            if meter is None and time.time() >= window[0]:
                meter = CpuMeter(pids)
            for o in reader.read():
                if not o.key.startswith(key_prefix):
                    continue
                latency = o.latency_s
                if window[0] <= o.timestamp_s < window[1]:
                    latencies.append((o.timestamp_s, latency))
                    if latency > LATENCY_BOUND_S:
                        result.late += 1
                if latency > RT_HOPELESS_S and not result.reason:
                    result.reason = f"an output {latency:.1f} s late"
            if not result.reason and result.late > 0.01 * result.expected:
                result.reason = "over 1% of the window's outputs later than 1 s"
            if result.reason:
                result.stopped_after_s = time.time() - start
                break
            worker.check_alive()
            if producer.error is not None:
                raise RuntimeError(f"paced producer failed: {producer.error!r}")
    finally:
        if meter is not None:
            result.cpu_cores = meter.cores()
        producer.finish()
    if producer.lags_s:
        result.producer_lag_p99_ms = 1000 * _percentile(sorted(producer.lags_s), 0.99)
    ordered = sorted(latency for _, latency in latencies)
    missing = max(0, result.expected - len(ordered))
    with_missing = ordered + [math.inf] * missing
    result.p99_s = _percentile(with_missing, 0.99)
    result.p50_s = _percentile(with_missing, 0.50)
    if not result.reason:
        third = RT_WINDOW_S / 3
        first = [lat for due, lat in latencies if due < window[0] + third]
        last = [lat for due, lat in latencies if due >= window[1] - third]
        if first and last:
            result.trend_s = statistics.median(last) - statistics.median(first)
        if result.p99_s > LATENCY_BOUND_S:
            result.reason = f"p99 {result.p99_s:.2f} s > {LATENCY_BOUND_S:.0f} s"
        elif result.trend_s is None or result.trend_s > RT_TREND_S:
            result.reason = "backlog growing (median latency rising over the window)"
        else:
            result.ok = True
    return result


def _realtime_run(bases: Sequence[BaseAthlete], tmp: Path, n: int) -> StepResult:
    """One search step on its own broker and worker (Tansu's in-memory broker gets slower as
    it fills: the same load on a broker that already ran a step is measurably later)."""
    with TansuServer(tmp / "broker") as kafka:
        kafka.create_topics([READINGS_TOPIC], partitions=INPUT_PARTITIONS)
        kafka.create_topics([METRICS_TOPIC, ALERTS_TOPIC], partitions=OUTPUT_PARTITIONS)
        reader = OutputReader(kafka.bootstrap)
        worker = WorkerProcess(kafka.bootstrap, tmp, "w1")
        try:
            _wait_ready(kafka.bootstrap, reader, [worker], bases[0])
            pids = {"broker": kafka.pid, "worker": worker.process.pid,
                    "load_and_reader": os.getpid()}
            return _realtime_step(kafka.bootstrap, reader, worker, bases, n, pids)
        finally:
            reader.close()
            worker.stop()


def _pipeline_rate(bases: Sequence[BaseAthlete]) -> float:
    """Readings/s of :meth:`Pipeline.process` in one loop on the real-time load of
    :data:`BASELINE_ATHLETES` athletes: warm-up readings untimed, the window's timed."""
    items = _schedule(bases, [f"b-{i}" for i in range(BASELINE_ATHLETES)],
                      RT_WARMUP_S + RT_WINDOW_S, stagger_s=RT_STAGGER_S)
    warm = [decode_reading(v) for off, _, _, v, _ in items if off < RT_WARMUP_S]
    timed = [decode_reading(v) for off, _, _, v, _ in items if off >= RT_WARMUP_S]
    pipeline = Pipeline()
    for r in warm:
        pipeline.process(r)
    started = time.perf_counter()
    for r in timed:
        pipeline.process(r)
    return len(timed) / (time.perf_counter() - started)


def _next_n(lo: int, hi: int | None) -> int:
    if hi is None:
        return lo * 2
    return max(RT_ROUND, round((lo + hi) / 2 / RT_ROUND) * RT_ROUND)


def _worker_athletes_realtime(bases: Sequence[BaseAthlete], tmp: Path) -> dict[str, object]:
    baseline_rate = _pipeline_rate(bases)
    _log(f"Pipeline.process baseline: {baseline_rate:.0f} readings/s")
    steps: list[StepResult] = []
    started = time.monotonic()
    lo, hi, n = 0, None, RT_START
    while time.monotonic() - started + RT_STEP_S <= RT_BUDGET_S:
        step = _realtime_run(bases, tmp / f"rt-{n}", n)
        steps.append(step)
        _log(f"{n} athletes: {'ok' if step.ok else 'NO'} "
             f"p50 {step.p50_s:.3f} s p99 {step.p99_s:.3f} s {step.reason}")
        if step.ok:
            lo = n
        else:
            hi = n
        if hi is not None and hi - lo <= max(RT_ROUND, 0.1 * lo):
            break
        n = _next_n(lo, hi)
        if n in (lo, hi):
            break
    best = next((s for s in steps if s.ok and s.athletes == lo), None)
    baseline_athletes = baseline_rate / READINGS_PER_ATHLETE_S
    return {
        "name": "worker_athletes_realtime",
        "value": lo,
        "unit": "athletes",
        "baseline": {"name": "Pipeline.process in one loop, no Kafka: readings/s ÷ 3",
                     "value": round(baseline_athletes)},
        "ratio": round(lo / baseline_athletes, 3),
        "target": f"search criterion: end-to-end p99 <= {LATENCY_BOUND_S:.0f} s and no "
                  "growing backlog",
        "p50_s": None if best is None else round(best.p50_s or 0.0, 3),
        "p99_s": None if best is None else round(best.p99_s or 0.0, 3),
        "cpu_cores": None if best is None else best.cpu_cores,
        "first_failing": hi,
        "steps": [s.as_json() for s in steps],
        "note": f"one `stridewatch worker` process, {INPUT_PARTITIONS} partitions, Tansu on "
                f"loopback, 2 cores shared by the broker, the worker and this process (paced "
                f"producer + reader). Latency = arrival at a consumer of stridewatch.metrics/"
                f"alerts (fetch.wait.max.ms {READER_FETCH_WAIT_MS}) - the reading's due time "
                f"(its Kafka timestamp, which Quix passes on to its outputs); each step: fresh "
                f"athletes on a fresh broker and worker, {RT_WARMUP_S:.0f} s warm-up (starts "
                f"spread over {RT_STAGGER_S:.0f} s) then a {RT_WINDOW_S:.0f} s window, "
                "outputs missing at the end counted as late. The worker's consumer keeps "
                "librdkafka's fetch.wait.max.ms 500, and Tansu holds a fetch that long even "
                "with data: up to 0.5 s of every latency is the broker's (p50 ~0.25 s at "
                "light load). The worker uses a fraction of a core (cpu_cores): it waits on "
                "Tansu's single-record produce requests (batch.num.messages=1), and Tansu "
                "slows as its in-memory log fills (hence a fresh broker per step), so this is "
                "a floor for a real Kafka broker, not the worker's own limit. Baseline: "
                f"Pipeline.process throughput on {BASELINE_ATHLETES} athletes of the same load "
                "(no Kafka, state or encoding) ÷ 3 readings/s, computed, not latency-bounded",
    }


# -- 2: readings/s with 1 and 2 workers ---------------------------------------------------------


def _backlog_rate(bases: Sequence[BaseAthlete], tmp: Path, workers: int,
                  producer_options: dict[str, int] = TANSU_PRODUCER) -> dict[str, Any]:
    names = [f"bk-{i}" for i in range(SCALING_ATHLETES)]
    items = _schedule(bases, names, SCALING_DURATION_S, stagger_s=0.0)
    expected = sum(item[4] for item in items)
    label = "-".join(f"{k}={v}" for k, v in producer_options.items()) or "batched"
    with TansuServer(tmp / f"scale{workers}-{label}-broker") as kafka:
        kafka.create_topics([READINGS_TOPIC], partitions=INPUT_PARTITIONS)
        kafka.create_topics([METRICS_TOPIC, ALERTS_TOPIC], partitions=OUTPUT_PARTITIONS)
        reader = OutputReader(kafka.bootstrap)
        procs = [WorkerProcess(kafka.bootstrap, tmp / f"scale{workers}-{label}", f"w{k + 1}",
                               producer_options)
                 for k in range(workers)]
        counts: list[int | None] = []
        try:
            _wait_ready(kafka.bootstrap, reader, procs, bases[0])
            meter = CpuMeter({"broker": kafka.pid,
                              **{p.name: p.process.pid for p in procs},
                              "load_and_reader": os.getpid()})
            produced = _produce_now(kafka.bootstrap, items)
            got, first, last = 0, 0.0, 0.0
            deadline = time.monotonic() + BACKLOG_WAIT_S
            while got < expected and time.monotonic() < deadline:
                batch = [o for o in reader.read(0.05) if o.key.startswith(b"bk-")]
                if batch:
                    if not got:
                        first = batch[0].arrival_s
                    got += len(batch)
                    last = batch[-1].arrival_s
                    cpu = meter.cores()
                elif got and time.time() - last > DRAIN_QUIET_S * 4:
                    break  # nothing more is coming
                for proc in procs:
                    proc.check_alive()
            if not got:
                raise RuntimeError(f"{workers} worker(s): no output within "
                                   f"{BACKLOG_WAIT_S:.0f} s")
            if got < expected:
                _log(f"WARNING {workers} worker(s): {got} of {expected} outputs arrived")
        finally:
            reader.close()
            counts = [proc.stop() for proc in procs]
    rate = produced / (last - first)
    _log(f"{workers} worker(s) ({label} producer): {rate:.0f} readings/s ({produced} readings "
         f"in {last - first:.1f} s; readings per worker {counts}; cores {cpu})")
    return {"rate": rate, "readings": produced, "seconds": last - first, "per_worker": counts,
            "outputs": got, "outputs_expected": expected, "cpu_cores": cpu}


def _worker_scaling(bases: Sequence[BaseAthlete], tmp: Path) -> dict[str, object]:
    crashes: list[str] = []
    one = _retrying("1 worker", lambda a: _backlog_rate(bases, tmp / f"one-{a}", 1), crashes)
    two = _retrying("2 workers", lambda a: _backlog_rate(bases, tmp / f"two-{a}", 2), crashes)
    batched = _retrying("1 worker, batched producer", lambda a: _backlog_rate(
        bases, tmp / f"batched-{a}", 1, producer_options={}), crashes)
    return {
        "name": "worker_scaling",
        "value": round(two["rate"]),
        "unit": "readings/s",
        "baseline": {"name": "1 worker, same backlog", "value": round(one["rate"])},
        "ratio": round(two["rate"] / one["rate"], 3),
        "target": "informative (2 workers on a 2-core machine shared with the broker, "
                  "which is the bottleneck)",
        "one_worker": round(one["rate"]),
        "two_workers": round(two["rate"]),
        "readings": two["readings"],
        "readings_per_worker_2": two["per_worker"],
        "cpu_cores_1": one["cpu_cores"],
        "cpu_cores_2": two["cpu_cores"],
        "outputs_missing": {"1": one["outputs_expected"] - one["outputs"],
                            "2": two["outputs_expected"] - two["outputs"]},
        "one_worker_batched_producer": round(batched["rate"]),
        "worker_crashes": crashes,
        "note": f"backlog of {SCALING_ATHLETES} athletes x {SCALING_DURATION_S:.0f} s (HR 1 Hz "
                f"+ footpod 2 Hz), {INPUT_PARTITIONS} partitions (athletes spread evenly), "
                "produced once every worker holds partitions; `stridewatch worker` "
                "processes; rate = readings / (last output - first output) as read from "
                "stridewatch.metrics/alerts (each run on a fresh Tansu). The machine has 2 "
                "cores shared by the broker, the workers and the reader, and the broker, not "
                "the workers, is the limit (each worker uses a fraction of a core, "
                "cpu_cores_*), so a second worker adds little or nothing here; one ~10 s run "
                "each, expect some ±15% between runs. readings_per_worker_2 includes the probe "
                "readings. "
                "cpu_cores_*: cores each process used meanwhile (/proc). "
                "one_worker_batched_producer: diagnostic only, 1 worker WITHOUT "
                "--producer-option batch.num.messages=1: the single-record produce requests "
                "that Tansu needs for exact changelog offsets cost the broker most of the "
                "time; without them Quix's changelog recovery is wrong on Tansu, so it is not "
                "a usable setting there (a real Kafka broker needs no such option)",
    }


# -- 3: recovery after a worker is killed -----------------------------------------------------


def _kill_one(bases: Sequence[BaseAthlete], tmp: Path) -> dict[str, Any]:
    """Two workers on a live load, one SIGKILLed: what the survivor's outputs show."""
    names = [f"live-{i}" for i in range(REBALANCE_ATHLETES)]
    partition_of = {name.encode(): i % INPUT_PARTITIONS for i, name in enumerate(names)}
    items = _schedule(bases, names, 90.0)
    result: dict[str, Any] = {}
    with TansuServer(tmp / "broker") as kafka:
        kafka.create_topics([READINGS_TOPIC], partitions=INPUT_PARTITIONS)
        kafka.create_topics([METRICS_TOPIC, ALERTS_TOPIC], partitions=OUTPUT_PARTITIONS)
        reader = OutputReader(kafka.bootstrap)
        procs = [WorkerProcess(kafka.bootstrap, tmp, f"w{k + 1}")
                 for k in range(2)]
        producer: PacedProducer | None = None
        try:
            _wait_ready(kafka.bootstrap, reader, procs, bases[0])
            producer = PacedProducer(kafka.bootstrap, items, time.time() + 0.2)
            producer.start()
            seen: set[bytes] = set()  # (key + value) of live outputs so far
            max_ts: dict[bytes, float] = {}
            with_outputs: set[bytes] = set()
            steady_from: float | None = None
            deadline = time.monotonic() + READY_WAIT_S
            while steady_from is None or time.monotonic() - steady_from < REBALANCE_STEADY_S:
                for o in reader.read():
                    if o.key.startswith(b"live-"):
                        seen.add(o.key + b"\0" + o.value)
                        max_ts[o.key] = max(max_ts.get(o.key, 0.0), o.timestamp_s)
                        with_outputs.add(o.key)
                if steady_from is None and len(with_outputs) == len(names):
                    steady_from = time.monotonic()
                for proc in procs:
                    proc.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError("live athletes' outputs did not all arrive within "
                                       f"{READY_WAIT_S:.0f} s")
            owned = [{partition_of[a.encode()] for a in proc.athletes() if a.startswith("live-")}
                     for proc in procs]
            victim = 0 if owned[0] else 1
            moved = owned[victim]
            if not moved or moved & owned[1 - victim]:
                raise RuntimeError(f"unclear partition ownership {owned}")
            kept = set(range(INPUT_PARTITIONS)) - moved
            killed_at = time.time()
            procs[victim].kill()
            _log(f"killed {procs[victim].name} (partitions {sorted(moved)})")
            recovered: dict[int, float] = {}
            caught_up: dict[int, float] = {}
            survivor_arrivals: list[float] = []
            deadline = time.monotonic() + REBALANCE_WAIT_S
            while len(caught_up) < len(moved) and time.monotonic() < deadline:
                for o in reader.read():
                    if not o.key.startswith(b"live-"):
                        continue
                    p = partition_of[o.key]
                    if p in kept:
                        survivor_arrivals.append(o.arrival_s)
                        continue
                    tag = o.key + b"\0" + o.value
                    by_survivor = (tag in seen or o.timestamp_s < max_ts.get(o.key, 0.0)
                                   or o.timestamp_s > killed_at)
                    seen.add(tag)
                    max_ts[o.key] = max(max_ts.get(o.key, 0.0), o.timestamp_s)
                    if by_survivor:
                        recovered.setdefault(p, o.arrival_s - killed_at)
                    if (o.timestamp_s > killed_at and o.latency_s <= LATENCY_BOUND_S):
                        caught_up.setdefault(p, o.arrival_s - killed_at)
                procs[1 - victim].check_alive()
            result = {
                "moved": sorted(moved),
                "recovered_s": max(recovered.values()) if len(recovered) == len(moved) else None,
                "caught_up_s": max(caught_up.values()) if len(caught_up) == len(moved) else None,
                "survivor_gap_s": _max_gap(killed_at, survivor_arrivals),
            }
        finally:
            if producer is not None:
                producer.finish()
            reader.close()
            for proc in procs:
                proc.stop()
        result["resumed_lines"] = procs[1 - victim].text().count("resumes after reading")
    _log(f"recovery: {result}")
    return result


def _rebalance_recovery(bases: Sequence[BaseAthlete], tmp: Path) -> dict[str, object]:
    crashes: list[str] = []
    result = _retrying("rebalance", lambda a: _kill_one(bases, tmp / f"rebalance-{a}"),
                       crashes)
    value = result["recovered_s"]
    session_ms = FAST_GROUP["session.timeout.ms"]
    return {
        "name": "rebalance_recovery_s",
        "value": None if value is None else round(value, 2),
        "unit": "s",
        "baseline": None,
        "ratio": None,
        "target": f"informative: about session.timeout.ms ({session_ms / 1000:.0f} s) + the "
                  "rebalance",
        "session_timeout_ms": session_ms,
        "heartbeat_interval_ms": FAST_GROUP["heartbeat.interval.ms"],
        "caught_up_s": None if result["caught_up_s"] is None
                       else round(result["caught_up_s"], 2),
        "survivor_gap_s": round(result["survivor_gap_s"][0], 2),
        "survivor_gap_began_s": round(result["survivor_gap_s"][1], 2),
        "moved_partitions": result["moved"],
        "athlete_states_restored": result["resumed_lines"],
        "worker_crashes": crashes,
        "note": f"two `stridewatch worker` processes on a paced live load of "
                f"{REBALANCE_ATHLETES} athletes ({INPUT_PARTITIONS} partitions); one SIGKILLed "
                f"after {REBALANCE_STEADY_S:.0f} s of steady outputs. value: kill -> the "
                "survivor's first output on every partition the dead worker had (an output "
                "repeated, earlier than one seen, or for a reading produced after the kill); "
                "dominated by the broker noticing the death (session.timeout.ms "
                f"{session_ms} ms), then the rebalance and the state restore from the "
                "changelog. caught_up_s: until those partitions' outputs are back within 1 s "
                "of their readings. survivor_gap_s: the longest pause of the survivor's own "
                "partitions' outputs after the kill (eager 'range' rebalance: it gives up "
                "everything meanwhile), which began survivor_gap_began_s after the kill "
                "(≈ the broker's detection of the death)",
    }


def _max_gap(since: float, arrivals: Sequence[float]) -> tuple[float, float]:
    """The longest pause between ``arrivals`` after ``since``, and when it began (s after
    ``since``)."""
    times = sorted(arrivals)
    times = [since, *times[bisect.bisect_left(times, since):]]
    gap, began = max(((b - a, a) for a, b in itertools.pairwise(times)), default=(0.0, since))
    return gap, began - since


def run() -> list[dict[str, object]]:
    started = time.perf_counter()
    bases = _bases(BASE_ATHLETES, BASE_DURATION_S)
    _log(f"{BASE_ATHLETES} base athletes x {BASE_DURATION_S:.0f} s built in "
         f"{time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp_name:
        tmp = Path(tmp_name)
        figures = []
        for label, measure in (("real-time athletes", _worker_athletes_realtime),
                               ("scaling", _worker_scaling),
                               ("rebalance", _rebalance_recovery)):
            t0 = time.perf_counter()
            _log(f"{label} ...")
            figures.append(measure(bases, tmp))
            _log(f"{label} done in {time.perf_counter() - t0:.1f} s")
    _log(f"all done in {time.perf_counter() - started:.1f} s")
    return figures


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps(run(), indent=2))
