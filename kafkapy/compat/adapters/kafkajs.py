"""kafkajs, the JavaScript client, through a Node.js helper (helpers/kafkajs/helper.js).

The helper's package.json and lock file pin kafkajs; `make compat-clients` installs it
beside them with npm.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .bridge import BridgedClient

HELPER_DIR = Path(__file__).parent / "helpers" / "kafkajs"


class KafkaJs(BridgedClient):
    name = "kafkajs"

    @classmethod
    def unavailable(cls) -> str | None:
        if shutil.which("node") is None:
            return "kafkajs needs Node.js, which is not installed (`make compat-clients` installs it)"
        if not (HELPER_DIR / "node_modules" / "kafkajs" / "package.json").exists():
            return "kafkajs is not installed beside its helper (`make compat-clients` installs it with npm)"
        return None

    @classmethod
    def helper_argv(cls) -> list[str]:
        return ["node", str(HELPER_DIR / "helper.js")]
