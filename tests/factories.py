"""Make many dispatched cases fast, through the real services: the benchmark's own factory, shared."""

from __future__ import annotations

from bench.cases import dispatched_cases

__all__ = ["dispatched_cases"]
