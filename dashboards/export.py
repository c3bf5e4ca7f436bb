"""Write the dashboards as stable JSON: ``python -m dashboards.export DIR``.

Stable formatting (sorted keys, 2-space indent, UTF-8, trailing newline), so regenerating gives
identical files and a diff shows only real changes. ``dashboards/generated/`` holds the
committed output; ``tests/test_dashboards.py`` fails when it is stale.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.build import dashboards

GENERATED_DIR = Path(__file__).resolve().parent / "generated"
REGENERATE = "python -m dashboards.export dashboards/generated"


def to_json(dashboard: Dashboard) -> str:
    """The dashboard as stable JSON text (ends with a newline)."""
    return json.dumps(dashboard, cls=JSONEncoder, sort_keys=True, indent=2,
                      ensure_ascii=False) + "\n"  # fmt: skip


def export(directory: Path | str) -> list[Path]:
    """Write ``<uid>.json`` for every dashboard into ``directory`` (created); the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for uid, dashboard in sorted(dashboards().items()):
        path = out / f"{uid}.json"
        path.write_text(to_json(dashboard), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print(f"usage: python -m dashboards.export [DIR]  (default: {GENERATED_DIR})")
        return 0 if args and args[0] in ("-h", "--help") else 2
    for path in export(args[0] if args else GENERATED_DIR):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
