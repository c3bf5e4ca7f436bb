"""``python -m stridewatch``."""

from stridewatch.cli import main

raise SystemExit(main())
