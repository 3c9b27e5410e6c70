"""kio's first import, without the hypothesis import it would bring.

kio registers a hypothesis strategy for each of its phantom types (i32, TopicName...)
as it defines them, importing hypothesis to do so whenever it is installed: some 60 to
150 ms and 10 MB in every process that never draws an example, a broker or a test
suite that only starts one. So kafkapy imports kio's phantom types first with
hypothesis hidden (an entry of None in `sys.modules` makes its import fail, as if it
were not installed), and when the process imports hypothesis itself, later, the types'
own hooks register the same strategies kio would have registered.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

# The kio modules that define phantom types; each registers its strategies as it is defined.
_PHANTOM_MODULES = ("kio.static.primitive", "kio.schema.types")


def import_kio_without_hypothesis() -> None:
    """Imports kio's phantom types, hypothesis hidden unless the process already has it."""
    if "kio.static._phantom" in sys.modules or "hypothesis" in sys.modules:
        return  # kio or hypothesis came first: kio decided, or decides, for itself
    sys.modules["hypothesis"] = None  # type: ignore[assignment]
    try:
        for name in _PHANTOM_MODULES:
            importlib.import_module(name)
    finally:
        del sys.modules["hypothesis"]
    sys.meta_path.insert(0, _RegisterStrategiesOnImport())


def register_kio_strategies() -> None:
    """What kio does at import when hypothesis is there: each phantom type's hook."""
    from kio.static._phantom import Phantom

    pending: list[type] = list(Phantom.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        cls.__hypothesis_hook__()  # type: ignore[attr-defined]


class _RegisterStrategiesOnImport(importlib.abc.MetaPathFinder):
    """Finds hypothesis as the other finders would, and registers kio's strategies once
    hypothesis is imported in full."""

    def find_spec(self, fullname: str, path: Any, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname != "hypothesis":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _ThenRegister(spec.loader)
        return spec


class _ThenRegister(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        register_kio_strategies()

    def __getattr__(self, name: str) -> Any:
        # get_source, get_filename...: what tracebacks and inspect ask the module's loader.
        return getattr(self._loader, name)
