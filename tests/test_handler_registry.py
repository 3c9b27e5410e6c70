"""The table of served APIs and the handler modules agree: every API served has its
handler, registered by the module the table names, and no module registers an API the
table does not serve."""

from __future__ import annotations

import importlib
import pkgutil

import kafkapy.handlers
from kafkapy.handlers import registry


def test_every_served_api_has_the_handler_of_the_module_the_table_names() -> None:
    for table in (registry.APIS, registry.CONTROLLER_APIS):
        for key, api in table.items():
            handle = api.handle
            assert handle.__module__ == f"kafkapy.handlers.{api.module}", key
            assert api.handle is handle  # resolved once


def test_no_handler_module_registers_an_api_the_table_does_not_serve() -> None:
    for module in pkgutil.iter_modules(kafkapy.handlers.__path__):
        importlib.import_module(f"kafkapy.handlers.{module.name}")
    assert set(registry._HANDLERS) == set(registry.APIS) | set(registry.CONTROLLER_APIS)
