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
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec
    from types import ModuleType

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


# The finder and loader below are duck-typed: importlib.abc imports importlib.resources,
# tempfile and shutil, some 10 ms of a broker's start.
class _RegisterStrategiesOnImport:
    """Finds hypothesis as the other finders would, and registers kio's strategies once
    hypothesis is imported in full."""

    def find_spec(self, fullname: str, path: Any, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname != "hypothesis":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _ThenRegister(spec.loader)  # type: ignore[assignment]  # a Loader by duck typing
                return spec
        return None


class _ThenRegister:
    def __init__(self, loader: Loader) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        register_kio_strategies()

    def __getattr__(self, name: str) -> Any:
        # get_source, get_filename...: what tracebacks and inspect ask the module's loader.
        return getattr(self._loader, name)
