"""The folders are the architecture (issue #10): the import-linter contracts in pyproject.toml
hold. `make lint` runs them too; this test makes a plain `pytest` run fail when one breaks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe is not None, "lint-imports missing: pip install -e '.[test]'"
    done = subprocess.run(
        [exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_processing_has_no_io_modules() -> None:
    """Purity is readable from the path: processing/ holds no outputs package any more."""
    assert not (ROOT / "processing" / "outputs").exists()
    assert (ROOT / "outputs" / "store").is_dir()
