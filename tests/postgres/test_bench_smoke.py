"""The benchmark still runs end to end (tiny sizes; figures are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_smoke_run_prints_every_figure():
    result = subprocess.run([sys.executable, "-m", "bench.run", "--smoke"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for line in ("| postgresql | api |", "| postgresql | ui |", "| sqlite | api |", "| sqlite | ui |",
                 "Bare-engine floor (", "Bare-engine floor for timers", "postgresql 200 cases", "sqlite 200 cases",
                 "postgresql, 2 scheduler(s)", "sqlite, 1 scheduler(s)", "SQL statements per completion |",
                 "- postgresql api: intake", "- sqlite ui: intake", "Targets (PostgreSQL, API):"):
        assert line in out, out
