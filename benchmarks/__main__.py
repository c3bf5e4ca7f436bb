"""Run every benchmark and print one JSON list to stdout (progress goes to stderr).

Each figure: ``{"name", "value", "unit", "baseline": {"name", "value"} | null, "ratio", "target"}``.
``python -m benchmarks NAME...`` runs only the modules named (e.g. ``gatt``, ``collector``).
"""

from __future__ import annotations

import importlib
import json
import sys
import time

MODULES = ("gatt", "collector", "hrv", "store", "influx", "mqtt", "fit", "processing", "latency",
           "demo", "notify", "worker", "scaleout", "bridge")


def main(argv: list[str]) -> int:
    wanted = argv or list(MODULES)
    unknown = sorted(set(wanted) - set(MODULES))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(MODULES)}", file=sys.stderr)
        return 2
    figures: list[dict[str, object]] = []
    for name in wanted:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        started = time.perf_counter()
        print(f"benchmark {name} ...", file=sys.stderr, flush=True)
        figures.extend(module.run())
        print(f"benchmark {name} done in {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
