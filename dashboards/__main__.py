"""``python -m dashboards [DIR]``: the same as ``python -m dashboards.export``."""

from dashboards.export import main

raise SystemExit(main())
