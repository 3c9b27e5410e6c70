"""The web console (`kafkapy console --command-config FILE`) against a kafkapy that takes
only SCRAM over SASL_SSL: the flows of the end-to-end test that matter to a secured
cluster (a topic created, records produced from the form and browsed, a group's lag),
and a wrong password or an untrusted certificate shown as an error page in Kafka's words."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import test_console
from kafkapy.testing.certificates import TestCertificates
from kafkapy.testing.embedded import Broker
from test_console import ConsoleProcess, cells, checked, group_caught_up, open_page
from test_tools_security import SCRAM, USERS, scram_properties

pytestmark = [pytest.mark.kafkapy_internals, pytest.mark.timeout(180)]

browser = test_console.browser  # Debian's chromium, as the console's own test drives it

@pytest.fixture(scope="module")
def sasl_ssl() -> Iterator[Broker]:
    # No initial rebalance delay: the group's consumer is assigned its partition at once.
    with Broker(security="sasl_ssl", users=USERS, mechanism=SCRAM, **{"group.initial.rebalance.delay.ms": 0}) as broker:
        yield broker


def test_console_against_sasl_ssl_with_scram(sasl_ssl: Broker, browser: Any, tmp_path: Path) -> None:
    topic, group = f"secured-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"
    console = ConsoleProcess(sasl_ssl.bootstrap_servers, "--command-config", str(scram_properties(tmp_path, sasl_ssl, "alice")))
    try:
        page = open_page(browser, console)
        base = console.url
        page.goto(base + "/")
        assert page.locator("#broker-count").inner_text() == "1"
        assert sasl_ssl.bootstrap_servers in page.locator("#brokers").inner_text()

        page.goto(base + "/topics")
        page.fill("#new-name", topic)
        page.fill("#new-partitions", "1")
        page.click("#create-topic button[type=submit]")
        page.wait_for_url(re.compile(rf"/topics/{topic}\?done="))
        assert page.locator(".notice").inner_text() == f"Created topic {topic}"

        page.goto(f"{base}/topics/{topic}/messages")
        for key, value in (("k-1", '{"over": "sasl_ssl"}'), ("k-2", "second")):
            page.fill("#p-key", key)
            page.fill("#p-value", value)
            page.click("#produce button[type=submit]")
            page.wait_for_url(re.compile(r"done=Produced"))
        page.goto(f"{base}/topics/{topic}/messages?seek=beginning")
        assert cells(page, "#records tbody tr td:nth-child(2)") == ["0", "1"]
        assert page.locator("#records tbody tr td:nth-child(5) pre").evaluate_all(
            "pres => pres.map(p => p.dataset.format)") == ["json", "text"]
        checked(page, "secured-messages")

        with group_caught_up(page, base, sasl_ssl.client_config(user="bob"), group, topic, 2):
            assert cells(page, f'#lag tr[data-topic="{topic}"] td')[2:5] == ["2", "2", "0"]
            checked(page, "secured-group")
    finally:
        console.stop()


def test_a_wrong_password_is_an_error_page_in_kafkas_words(sasl_ssl: Broker, browser: Any, tmp_path: Path) -> None:
    console = ConsoleProcess(sasl_ssl.bootstrap_servers, "--command-config",
                             str(scram_properties(tmp_path, sasl_ssl, "alice", password="not-the-password")))
    try:
        page = open_page(browser, console)
        response = page.goto(console.url + "/topics")
        assert response.status == 400
        assert page.locator("#error-code").inner_text() == "Kafka error code 58 (SASL_AUTHENTICATION_FAILED)"
        assert page.locator("#error-message").inner_text() == (
            f"SASL authentication with the broker at {sasl_ssl.bootstrap_servers}: SASL_AUTHENTICATION_FAILED "
            f"(Authentication failed during authentication due to invalid credentials with SASL mechanism {SCRAM})")
        checked(page, "secured-wrong-password")
    finally:
        console.stop()


def test_an_untrusted_certificate_is_an_error_page(sasl_ssl: Broker, browser: Any, tmp_path: Path) -> None:
    assert sasl_ssl.certificates is not None
    config = scram_properties(tmp_path, sasl_ssl, "alice")
    stranger = TestCertificates(tmp_path / "stranger", name="another CA")
    config.write_text(config.read_text().replace(str(sasl_ssl.certificates.ca_path), str(stranger.ca_path)))
    console = ConsoleProcess(sasl_ssl.bootstrap_servers, "--command-config", str(config))
    try:
        page = open_page(browser, console)
        response = page.goto(console.url + "/")
        assert response.status == 502
        assert page.locator("#error-message").inner_text().startswith(
            f"SSL handshake with the broker at {sasl_ssl.bootstrap_servers} failed: unable to get local issuer certificate")
    finally:
        console.stop()


def test_a_properties_file_the_console_cannot_use_stops_it_at_start(sasl_ssl: Broker, tmp_path: Path) -> None:
    config = tmp_path / "jks.properties"
    config.write_text("security.protocol=SSL\nssl.truststore.type=JKS\nssl.truststore.location=truststore.jks\n")
    with pytest.raises(RuntimeError, match=r"kafkapy console: .*jks.properties: ssl.truststore.type JKS: "
                                           r"kafkapy's client reads PEM files only"):
        ConsoleProcess(sasl_ssl.bootstrap_servers, "--command-config", str(config))
