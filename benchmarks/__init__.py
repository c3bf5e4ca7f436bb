"""Reproducible benchmarks; ``python -m benchmarks`` prints one JSON list of figures."""

import sys
from pathlib import Path

# The benchmarks start the tests' real servers (``tests/*_server.py``), which import their
# shared base (``tests/server_process.py``) by its top-level name, as under pytest.
_TESTS = str(Path(__file__).resolve().parent.parent / "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)
