"""JSON Web Key Sets for OAUTHBEARER listeners: read from a file: URL or fetched over
https, always in a worker thread, at start (a broker that cannot read its keys does not
start), again every `sasl.oauthbearer.jwks.endpoint.refresh.ms`, and as soon as a token
names a kid the set lacks (at most once a minute per kid, as Kafka)."""

from __future__ import annotations

import logging
import math
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from ..config import ConfigError

if TYPE_CHECKING:
    from ..security.jws import KeySet

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 10


@dataclass
class JwksSource:
    url: str
    refresh_ms: int
    keys: KeySet

    def load(self) -> None:
        """Reads the key set (blocking: call from a worker thread)."""
        from ..security.jws import parse_jwks  # the cryptography package, needed only here

        parsed = urllib.parse.urlparse(self.url)
        if parsed.scheme == "file":
            with open(urllib.request.url2pathname(parsed.path), "rb") as f:
                text = f.read()
        else:
            with urllib.request.urlopen(self.url, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310 (scheme checked at start)
                text = response.read()
        self.keys.keys = parse_jwks(text)


def load_at_start(sources: list[JwksSource]) -> None:
    """Each source's keys, or ConfigError naming the one that cannot be read (blocking)."""
    for source in sources:
        try:
            source.load()
        except (OSError, ValueError) as e:
            raise ConfigError(f"Cannot read the JWKS at sasl.oauthbearer.jwks.endpoint.url={source.url}: {e}") from None


async def refresh_forever(source: JwksSource) -> None:
    """Reads the keys again every refresh.ms (never when 0) and when the key set asks for it;
    a failed read keeps the keys it had."""
    wanted = anyio.Event()

    def want_refresh() -> None:
        wanted.set()

    source.keys.refresh_wanted = want_refresh
    while True:
        with anyio.move_on_after(source.refresh_ms / 1000 if source.refresh_ms > 0 else math.inf):
            await wanted.wait()
        wanted = anyio.Event()
        try:
            await anyio.to_thread.run_sync(source.load)
        except (OSError, ValueError) as e:
            log.warning("Could not refresh the JWKS at %s (keeping the keys read before): %s", source.url, e)
