"""The README's `stridewatch decode` examples work exactly as shown."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_EXAMPLE = re.compile(r"```console\n\$ \.venv/bin/(stridewatch decode [^\n]+)\n(.*?)```", re.S)


def _examples() -> list[tuple[str, str]]:
    found = _EXAMPLE.findall(README.read_text(encoding="utf-8"))
    assert len(found) >= 3, "README lost its decode examples"
    return found


@pytest.mark.parametrize(("command", "expected"), _examples())
def test_decode_example(command: str, expected: str) -> None:
    argv = command.split()[1:]
    result = subprocess.run(
        [sys.executable, "-m", "stridewatch", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    if expected.startswith("stridewatch: error:"):
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr == expected
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected
