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

`security="sasl_plaintext"` (or `"sasl_ssl"`, over TLS) authenticates with SASL the `users`
given, by name and password:

    with kafkapy.Broker(security="sasl_plaintext", users={"alice": "secret"}) as broker:
        Producer(broker.client_config(user="alice", mechanism="PLAIN"))  # principal User:alice

with the SASL `mechanism` given: PLAIN (the default; users in the listener's JAAS
configuration), SCRAM-SHA-256 or SCRAM-SHA-512 (users' credentials written as metadata
records once the broker serves, as AlterUserScramCredentials writes them), or OAUTHBEARER
(unsecured JWS tokens, validated as Kafka's default validator does; no users needed):

    with kafkapy.Broker(security="sasl_plaintext", mechanism="OAUTHBEARER") as broker:
        Producer(broker.client_config(user="alice"))  # an unsecured token whose sub is alice

`client_config(token=...)` presents the tokens a function makes instead (signed ones, say:
see kafkapy.testing.oauth).

`broker.console_url` serves the web console beside the broker, on a free port of
127.0.0.1, from the first time it is read (`AsyncBroker`: start it with
`kafkapy_console_port=0`).
"""

from __future__ import annotations

import secrets
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
from ..metadata.scram import MECHANISM_CODES, MIN_ITERATIONS, ScramUpsertion, alter_scram_credentials
from ..security.oauthbearer import OAUTHBEARER_LOGIN_MODULE
from ..security.scram import derive_keys, salted_password
from ..server import BrokerServer, Supervisor

if TYPE_CHECKING:
    from .certificates import TestCertificates


SECURITY = ("plaintext", "ssl", "mtls", "sasl_plaintext", "sasl_ssl")
Flavour = Literal["confluent-kafka", "kafka-python"]
T = TypeVar("T")
_PLAIN_LOGIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
_SCRAM_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
_LOGIN_MODULES = {"SCRAM-SHA-256": _SCRAM_LOGIN_MODULE, "SCRAM-SHA-512": _SCRAM_LOGIN_MODULE,
                  "OAUTHBEARER": OAUTHBEARER_LOGIN_MODULE}


def _config(data_dir: Path, overrides: Mapping[str, object], security: dict[str, object]) -> BrokerConfig:
    values: dict[str, object] = {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(data_dir), **security}
    for key, value in overrides.items():
        name = key if key in BROKER_CONFIGS or "." in key else key.replace("_", ".")
        values[name] = value
    return BrokerConfig(values)


def _security_settings(security: str, certificates: TestCertificates | None, users: Mapping[str, str],
                       mechanism: str) -> dict[str, object]:
    settings: dict[str, object] = {}
    if security.startswith("sasl_"):
        listener = security.upper()
        entries = " ".join(f'user_{name}="{_jaas_quoted(password)}"' for name, password in users.items())
        jaas = f"{_PLAIN_LOGIN_MODULE} required {entries};" if mechanism == "PLAIN" else f"{_LOGIN_MODULES[mechanism]} required;"
        settings.update({"listeners": f"{listener}://127.0.0.1:0", "sasl.enabled.mechanisms": mechanism,
                         f"listener.name.{security}.{mechanism.lower()}.sasl.jaas.config": jaas})
    if certificates is None:
        return settings
    settings.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": str(certificates.server())})
    settings.setdefault("listeners", "SSL://127.0.0.1:0")
    if security == "mtls":
        settings.update({"ssl.client.auth": "required", "ssl.truststore.type": "PEM",
                         "ssl.truststore.location": str(certificates.ca_path)})
    return settings


def _oauthbearer_settings(user: str | None, token: Callable[[], str] | None, confluent: bool) -> dict[str, object]:
    from .oauth import confluent_token_settings, kafka_python_token_provider, user_token

    if token is None and confluent:
        # librdkafka makes and renews the unsecured token itself.
        return {"sasl.mechanism": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": True,
                "sasl.oauthbearer.config": f"principal={user}"}
    source = token if token is not None else lambda: user_token(str(user))
    if confluent:
        return confluent_token_settings(source)
    return {"sasl_mechanism": "OAUTHBEARER", "sasl_oauth_token_provider": kafka_python_token_provider(source)}


def _jaas_quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class _Base:
    def __init__(self, data_dir: str | Path | None, clock: Clock | None, overrides: Mapping[str, object],
                 security: str = "plaintext", users: Mapping[str, str] | None = None, mechanism: str = "PLAIN") -> None:
        if security not in SECURITY:
            raise ValueError(f"security={security!r}: the test kit makes {', '.join(SECURITY)} brokers")
        if mechanism not in MECHANISMS:
            raise ValueError(f"mechanism={mechanism!r}: the test kit's SASL brokers serve {', '.join(MECHANISMS)}")
        if users and not security.startswith("sasl_"):
            raise ValueError(f"users are for SASL brokers (security='sasl_plaintext' or 'sasl_ssl'), not {security!r}")
        self.users = dict(users or {})
        self.mechanism = mechanism
        self._own_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="kafkapy-")) if data_dir is None else Path(data_dir)
        self.security = security
        self.certificates: TestCertificates | None = None
        if security not in ("plaintext", "sasl_plaintext"):
            from .certificates import TestCertificates  # needs the cryptography package

            self.certificates = TestCertificates(tempfile.mkdtemp(prefix="kafkapy-certificates-"))
        self.clock = clock
        self.config = _config(self.data_dir, overrides, _security_settings(security, self.certificates, self.users, mechanism))
        self.supervisor: Supervisor | None = None

    def client_config(self, user: str | None = None, flavour: Flavour = "confluent-kafka", *, mechanism: str | None = None,
                      password: str | None = None, token: Callable[[], str] | None = None) -> dict[str, object]:
        """A client's settings for this broker: confluent-kafka's keys, or kafka-python's
        keyword arguments. On a TLS broker, the client trusts the test certificate authority,
        and on an mTLS one a `user` presents a certificate of its own (CN=<user>,O=kafkapy
        test); without a user, the client has none. On a SASL broker a `user` authenticates
        with the SASL `mechanism` (the broker's unless given) and its password (or the `password` given, which may be
        wrong on purpose); with OAUTHBEARER, with an unsecured token naming the user, or the
        tokens `token` makes."""
        confluent = flavour == "confluent-kafka"
        settings: dict[str, object] = {"bootstrap.servers" if confluent else "bootstrap_servers": self.bootstrap_servers}
        sasl = self.security.startswith("sasl_")
        mechanism = mechanism or self.mechanism
        if sasl:
            settings["security.protocol" if confluent else "security_protocol"] = self.security.upper()
            if mechanism == "OAUTHBEARER" and (user is not None or token is not None):
                settings.update(_oauthbearer_settings(user, token, confluent))
            elif user is not None:
                secret = password if password is not None else self.users[user]
                settings.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": secret} if confluent else
                                {"sasl_mechanism": mechanism, "sasl_plain_username": user, "sasl_plain_password": secret})
        if self.certificates is None:
            return settings
        if not sasl:
            settings["security.protocol" if confluent else "security_protocol"] = "SSL"
        settings["ssl.ca.location" if confluent else "ssl_cafile"] = str(self.certificates.ca_path)
        if user is not None and not sasl:
            certificate, key = self.certificates.client(user)
            settings["ssl.certificate.location" if confluent else "ssl_certfile"] = str(certificate)
            settings["ssl.key.location" if confluent else "ssl_keyfile"] = str(key)
        return settings

    async def _add_scram_users(self) -> None:
        """The users' SCRAM credentials, written through the controller as
        AlterUserScramCredentials writes them (no client could authenticate to ask)."""
        if not self.mechanism.startswith("SCRAM-") or not self.users:
            return
        assert self.supervisor is not None and isinstance(self.supervisor.server, BrokerServer)
        broker = self.supervisor.server.broker
        assert broker is not None
        code = MECHANISM_CODES[self.mechanism]
        upsertions = []
        for name, password in self.users.items():
            salt = secrets.token_bytes(16)
            upsertions.append(ScramUpsertion(name, code, MIN_ITERATIONS, salt,
                                             salted_password(self.mechanism, password, salt, MIN_ITERATIONS)))
        await broker.controller_service.write(
            lambda image: alter_scram_credentials(image.scram_credentials, [], upsertions, derive_keys))

    def connected_principals(self) -> list[str]:
        """The principal of each client connection open now (User:ANONYMOUS for one that
        did not authenticate): what an authorizer would be asked about."""
        assert self.supervisor is not None, "the broker is not running"
        server = self.supervisor.server
        return server.principals() if isinstance(server, BrokerServer) else []

    def reauthentications(self) -> int:
        """The SASL re-authentications (KIP-368) completed on the client connections open now."""
        assert self.supervisor is not None, "the broker is not running"
        server = self.supervisor.server
        return server.reauthentications() if isinstance(server, BrokerServer) else 0

    @property
    def port(self) -> int:
        assert self.supervisor is not None, "the broker is not running"
        return self.supervisor.port

    @property
    def listener_ports(self) -> dict[str, int]:
        """Each broker listener's port, by listener name: where a client of that listener bootstraps."""
        assert self.supervisor is not None, "the broker is not running"
        server = self.supervisor.server
        return {bound.name: bound.port for bound in server.bound} if isinstance(server, BrokerServer) else {}

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
    def console_url(self) -> str:
        """The web console's address (served when the broker starts with kafkapy_console_port)."""
        assert self.supervisor is not None and self.supervisor.console_url is not None, \
            "the console is off: start the broker with kafkapy_console_port=0"
        return self.supervisor.console_url

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
                 users: Mapping[str, str] | None = None, mechanism: str = "PLAIN", **overrides: object) -> None:
        super().__init__(data_dir, clock, overrides, security, users, mechanism)
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
            self._portal.call(self._add_scram_users)
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

    @property
    def console_url(self) -> str:
        """The web console's address on 127.0.0.1, served beside the broker from the first
        time it is asked for (on a free port, unless kafkapy_console_port names one)."""
        assert self._portal is not None and self.supervisor is not None, "the broker is not running"
        return self._portal.call(self.supervisor.open_console)

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
                 users: Mapping[str, str] | None = None, mechanism: str = "PLAIN", **overrides: object) -> None:
        super().__init__(data_dir, clock, overrides, security, users, mechanism)
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> AsyncBroker:
        self.supervisor = Supervisor(self.config, self.clock)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        await self._tg.start(self.supervisor.run)
        await self._add_scram_users()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.supervisor is not None and self._tg is not None
        self.supervisor.stop()
        await self._tg.__aexit__(None, None, None)
        self._remove_dir()
