"""kafkapy inside your process: a real broker on an ephemeral 127.0.0.1 port, for tests.

    with kafkapy.Broker() as broker:
        Producer({"bootstrap.servers": broker.bootstrap_servers})

`Broker` runs the server on its own event loop in a background thread, so it works from
plain synchronous tests. `AsyncBroker` runs it as a task of the caller's anyio or
asyncio event loop. Both take broker configs as keyword arguments, with Kafka's key
names (`Broker(**{"num.partitions": 3})`, or with underscores: `num_partitions=3`).

`Broker(security="ssl")` listens with TLS, and `security="mtls"` also requires client
certificates: a throwaway certificate authority signs the broker's certificate and one per
user, and `broker.client_config(user="alice")` gives a client's settings:

    with kafkapy.Broker(security="mtls") as broker:
        Producer(broker.client_config(user="alice"))  # principal User:CN=alice,O=kafkapy test
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
import anyio.abc
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..clock import Clock
from ..config import BROKER_CONFIGS, BrokerConfig
from ..handlers.faults import Faults
from ..server import BrokerServer, Supervisor

if TYPE_CHECKING:
    from .certificates import TestCertificates


SECURITY = ("plaintext", "ssl", "mtls")
Flavour = Literal["confluent-kafka", "kafka-python"]
T = TypeVar("T")


def _config(data_dir: Path, overrides: Mapping[str, object], security: dict[str, object]) -> BrokerConfig:
    values: dict[str, object] = {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(data_dir), **security}
    for key, value in overrides.items():
        name = key if key in BROKER_CONFIGS else key.replace("_", ".")
        values[name] = value
    return BrokerConfig(values)


def _security_settings(security: str, certificates: TestCertificates | None) -> dict[str, object]:
    if certificates is None:
        return {}
    settings: dict[str, object] = {"listeners": "SSL://127.0.0.1:0", "ssl.keystore.type": "PEM",
                                   "ssl.keystore.location": str(certificates.server())}
    if security == "mtls":
        settings.update({"ssl.client.auth": "required", "ssl.truststore.type": "PEM",
                         "ssl.truststore.location": str(certificates.ca_path)})
    return settings


class _Base:
    def __init__(self, data_dir: str | Path | None, clock: Clock | None, overrides: Mapping[str, object],
                 security: str = "plaintext") -> None:
        if security not in SECURITY:
            raise ValueError(f"security={security!r}: the test kit makes {', '.join(SECURITY)} brokers")
        self._own_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="kafkapy-")) if data_dir is None else Path(data_dir)
        self.security = security
        self.certificates: TestCertificates | None = None
        if security != "plaintext":
            from .certificates import TestCertificates  # needs the cryptography package

            self.certificates = TestCertificates(tempfile.mkdtemp(prefix="kafkapy-certificates-"))
        self.clock = clock
        self.config = _config(self.data_dir, overrides, _security_settings(security, self.certificates))
        self.supervisor: Supervisor | None = None

    def client_config(self, user: str | None = None, flavour: Flavour = "confluent-kafka") -> dict[str, object]:
        """A client's settings for this broker: confluent-kafka's keys, or kafka-python's
        keyword arguments. On a TLS broker, the client trusts the test certificate authority,
        and a `user` presents a certificate of its own (CN=<user>,O=kafkapy test); without a
        user, the client has none."""
        confluent = flavour == "confluent-kafka"
        settings: dict[str, object] = {"bootstrap.servers" if confluent else "bootstrap_servers": self.bootstrap_servers}
        if self.certificates is None:
            return settings
        settings["security.protocol" if confluent else "security_protocol"] = "SSL"
        settings["ssl.ca.location" if confluent else "ssl_cafile"] = str(self.certificates.ca_path)
        if user is not None:
            certificate, key = self.certificates.client(user)
            settings["ssl.certificate.location" if confluent else "ssl_certfile"] = str(certificate)
            settings["ssl.key.location" if confluent else "ssl_keyfile"] = str(key)
        return settings

    def connected_principals(self) -> list[str]:
        """The principal of each client connection open now (User:ANONYMOUS for one that
        did not authenticate): what an authorizer would be asked about."""
        assert self.supervisor is not None, "the broker is not running"
        server = self.supervisor.server
        return server.principals() if isinstance(server, BrokerServer) else []

    @property
    def port(self) -> int:
        assert self.supervisor is not None, "the broker is not running"
        return self.supervisor.port

    @property
    def faults(self) -> Faults:
        """Faults to inject: `broker.faults.add("error", api_key=0, error="NOT_LEADER_OR_FOLLOWER", count=2)`."""
        assert self.supervisor is not None, "the broker is not running"
        return self.supervisor.faults

    @property
    def control_url(self) -> str:
        """The control channel's address (start the broker with kafkapy_control_port=0)."""
        assert self.supervisor is not None and self.supervisor.control is not None, "the control channel is off"
        return f"http://127.0.0.1:{self.supervisor.control.port}"

    @property
    def control_token(self) -> str:
        """The bearer token the control channel asks of every request."""
        assert self.supervisor is not None and self.supervisor.control is not None, "the control channel is off"
        return self.supervisor.control.token

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _remove_dir(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.certificates is not None:
            shutil.rmtree(self.certificates.directory, ignore_errors=True)


class Broker(_Base):
    """A broker on a background thread; a context manager."""

    def __init__(self, data_dir: str | Path | None = None, *, clock: Clock | None = None, security: str = "plaintext",
                 **overrides: object) -> None:
        super().__init__(data_dir, clock, overrides, security)
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._task: Future[Any] | None = None

    def start(self) -> Broker:
        self._portal_cm = start_blocking_portal(backend="asyncio")
        self._portal = self._portal_cm.__enter__()
        # Built on the broker's own event loop, where its events live.
        self.supervisor = self._portal.call(Supervisor, self.config, self.clock)
        try:
            self._task, _ = self._portal.start_task(self.supervisor.run)
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise
        return self

    def stop(self) -> None:
        """Stops gracefully (requests in flight are answered, logs flushed) and cleans up."""
        if self._portal is None or self.supervisor is None or self._task is None:
            return
        self._portal.call(self.supervisor.stop)
        self._task.result()
        assert self._portal_cm is not None
        self._portal_cm.__exit__(None, None, None)
        self._portal = self._portal_cm = self._task = None
        self._remove_dir()

    def restart(self) -> Broker:
        """Stops gracefully and starts again on the same port, keeping data and faults."""
        assert self._portal is not None and self.supervisor is not None, "the broker is not running"
        self._portal.call(self.supervisor.restart)
        return self

    def submit(self, async_fn: Callable[..., Awaitable[T]], *args: object) -> Future[T]:
        """Runs `async_fn(*args)` as a task of the broker's event loop, next to its handlers:
        for a harness that drives the broker's internals and bounds how long it waits."""
        assert self._portal is not None, "the broker is not running"
        return self._portal.start_task_soon(async_fn, *args)

    def advance_clock(self, ms: int) -> None:
        """Moves the broker's manual clock (Broker(clock=FakeClock())) and lets timers fire."""
        assert self._portal is not None and self.supervisor is not None, "the broker is not running"
        self._portal.call(self.supervisor.advance_clock, ms)

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AsyncBroker(_Base):
    """A broker as a task of the caller's event loop; an async context manager."""

    def __init__(self, data_dir: str | Path | None = None, *, clock: Clock | None = None, security: str = "plaintext",
                 **overrides: object) -> None:
        super().__init__(data_dir, clock, overrides, security)
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> AsyncBroker:
        self.supervisor = Supervisor(self.config, self.clock)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        await self._tg.start(self.supervisor.run)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.supervisor is not None and self._tg is not None
        self.supervisor.stop()
        await self._tg.__aexit__(None, None, None)
        self._remove_dir()
