"""The scenario modules, one per feature area: a scenario named "produce.headers" lives in
produce.py. A new area is a module here and its name in AREAS, whose order is the order
of the matrix."""

from __future__ import annotations

import importlib

from ..registry import SCENARIOS, Scenario

__all__ = ["AREAS", "Scenario", "load"]

AREAS = ("metadata", "topics", "produce", "list_offsets", "configs", "delete_records", "groups", "idempotence",
         "transactions", "compaction", "acls", "security", "broker")


def load(*areas: str) -> dict[str, Scenario]:
    """The scenarios, in matrix order, once the modules of areas (all by default) have
    registered theirs. A worker loads only its scenario's area: imports are a good part of
    its start-up."""
    for area in areas or AREAS:
        importlib.import_module(f".{area}", __name__)
    strays = [name for name in SCENARIOS if name.split(".", 1)[0] not in AREAS]
    if strays:
        raise ValueError(f"scenarios outside every area of {AREAS}: {strays}")
    return {name: s for area in AREAS for name, s in SCENARIOS.items() if s.area == area}
