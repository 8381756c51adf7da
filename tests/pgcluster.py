"""The throwaway PostgreSQL cluster now lives in ``bench.cluster`` (bench imports nothing from tests)."""

from bench.cluster import Cluster

__all__ = ["Cluster"]
