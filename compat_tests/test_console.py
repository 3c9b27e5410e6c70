"""The web console (`kafkapy console`) end to end: a kafkapy broker process, the console as
a process of its own against it, and Debian's chromium driven by Playwright, refused any
request but the console's. Each page is saved as a 1280x800 screenshot under
reports/console/, and every page is checked for the basics of accessibility: each control
has a label, and the forms work from the keyboard."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest
from confluent_kafka import Consumer, Producer

from kafkapy.client import EARLIEST, TOPIC_RESOURCE, Client
from kafkapy.metadata.acls import Acl, AclOperation, AclPermission, PatternType, ResourceType
from kafkapy.testing.embedded import AsyncBroker, Broker
from kafkapy.testing.process import BrokerProcess
from waiting import until

pytestmark = [pytest.mark.kafkapy_internals, pytest.mark.timeout(240)]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "reports" / "console"
START_TIMEOUT_S = 30
STEP_TIMEOUT_MS = 30_000
_SERVING = re.compile(r"serving (http://127\.0\.0\.1:\d+)/")
# Form controls without a label, an aria-label, or (a button) text of their own.
UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !(el.tagName === 'BUTTON' && el.textContent.trim()))
    .map(el => el.outerHTML)"""


# Shown controls and links the Tab key cannot reach (a negative tabindex), and any
# element put out of the document's order (a positive one).
OUT_OF_TAB_ORDER = """() => [...document.querySelectorAll('a[href], input:not([type=hidden]), select, textarea, button, summary, [tabindex]')]
    .filter(el => el.tabIndex > 0 || (el.tabIndex < 0 && el.id !== 'content' && !el.disabled && el.getClientRects().length))
    .map(el => el.outerHTML)"""


class ConsoleProcess:
    """`python -m kafkapy console` on a free port of 127.0.0.1, stopped by its pid."""

    def __init__(self, bootstrap: str, *options: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "kafkapy", "console", "--bootstrap", bootstrap, "--port", "0",
                                         *options], stderr=subprocess.PIPE, text=True)
        self.url = ""
        self.output: list[str] = []
        serving = threading.Event()
        threading.Thread(target=self._drain, args=(serving,), daemon=True).start()
        if not serving.wait(START_TIMEOUT_S) or not self.url:
            self.stop()
            raise RuntimeError("the console did not start:\n" + "".join(self.output))

    def _drain(self, serving: threading.Event) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.output.append(line)
            if match := _SERVING.search(line):
                self.url = match.group(1)
                serving.set()
        serving.set()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    # No initial rebalance delay: the group's consumer is assigned its partition at once.
    with BrokerProcess(tmp_path_factory.mktemp("console"), {"group.initial.rebalance.delay.ms": 0}) as process:
        yield process


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} (Debian's chromium) is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], timeout=60_000)
        try:
            yield launched
        finally:
            launched.close()


class ConsoleAt:
    """A console already served (beside a broker) at `url`."""

    def __init__(self, url: str) -> None:
        self.url = url


def open_page(browser: Any, console: ConsoleProcess | ConsoleAt) -> Any:
    """A 1280x800 page that may load nothing but the console's own URLs."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(STEP_TIMEOUT_MS)
    refused: list[str] = []
    page.refused = refused

    def only_the_console(route: Any) -> None:
        if route.request.url.startswith(console.url + "/"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_console)
    return page


def checked(page: Any, name: str) -> None:
    """The page's accessibility basics, and its screenshot."""
    assert page.evaluate(UNLABELLED_CONTROLS) == [], f"controls without a label on {page.url}"
    assert page.evaluate(OUT_OF_TAB_ORDER) == [], f"controls the Tab key skips, or takes out of order, on {page.url}"
    assert page.refused == [], f"the page asked for more than the console: {page.refused}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def tab_to(page: Any, element_id: str, presses: int = 60) -> None:
    """Moves the focus with the Tab key alone until it reaches the element."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} is not reachable with the Tab key on {page.url}")


def cells(page: Any, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


@contextmanager
def group_caught_up(page: Any, base: str, settings: dict[str, Any], group: str, topic: str, count: int) -> Iterator[None]:
    """A consumer of `group` reads the topic's `count` records and commits, and the group's
    page, open in `page`, shows its lag fall to zero; the consumer stays a member until
    the block ends."""
    consumer = Consumer({**settings, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        consumed: list[bytes] = []

        def consume_all() -> bool:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                consumed.append(message.value())
            return len(consumed) == count

        until(consume_all, 60, f"the consumer has all {count} records", lambda: consumed)
        consumer.commit(asynchronous=False)

        def lag_shown() -> str:
            page.goto(f"{base}/groups/{group}")
            return page.locator("#total-lag").inner_text()

        until(lambda: lag_shown() == "0", 30, "the group's lag is zero on its page", lag_shown)
        yield
    finally:
        consumer.close()


def test_console_end_to_end(broker: BrokerProcess, browser: Any) -> None:
    topic, group = f"console-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"
    console = ConsoleProcess(broker.bootstrap)
    try:
        page = open_page(browser, console)
        base = console.url

        # The cluster: one broker, the controller, its address.
        page.goto(base + "/")
        assert page.locator("#broker-count").inner_text() == "1"
        assert f"127.0.0.1:{broker.port}" in page.locator("#brokers").inner_text()
        assert "controller" in page.locator("#brokers").inner_text()
        checked(page, "cluster")

        # A topic created with a config, from the keyboard alone.
        page.goto(base + "/topics")
        tab_to(page, "new-name")
        page.keyboard.type(topic)
        page.keyboard.press("Tab")
        page.keyboard.type("1")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        page.keyboard.type("retention.ms=3600000")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(rf"/topics/{topic}\?done="))
        assert page.locator(".notice").inner_text() == f"Created topic {topic}"
        assert page.locator("#partition-total").inner_text() == "1"
        retention = page.locator('#configs tr[data-config="retention.ms"] td').all_inner_texts()[:3]
        assert retention == ["retention.ms", "", "DYNAMIC_TOPIC_CONFIG"]
        assert page.input_value('#configs input[name="set.retention.ms"]') == "3600000"
        assert page.locator('#configs tr[data-config="cleanup.policy"] td').all_inner_texts()[2] == "DEFAULT_CONFIG"
        checked(page, "topic")

        # Three records produced from the form: JSON with a header, text, and bytes that are not text.
        page.goto(f"{base}/topics/{topic}/messages")
        for key, value, headers in (("k-json", '{"n": 1, "kind": "json"}', "trace: t-1"),
                                    ("k-text", "plain text two", ""), ("k-bin", "\x01\x02bin", "")):
            page.fill("#p-key", key)
            page.fill("#p-value", value)
            page.fill("#p-headers", headers)
            page.click("#produce button[type=submit]")
            page.wait_for_url(re.compile(r"done=Produced"))
            assert page.locator(".notice").inner_text() == "Produced a record to partition 0"

        # Browsed from the beginning, each value in the format its bytes call for...
        page.goto(f"{base}/topics/{topic}/messages?seek=beginning")
        assert cells(page, "#records tbody tr td:nth-child(2)") == ["0", "1", "2"]
        assert page.locator("#records tbody tr td:nth-child(5) pre").evaluate_all(
            "pres => pres.map(p => p.dataset.format)") == ["json", "text", "hex"]
        assert '"kind": "json"' in page.locator("#records tbody tr").nth(0).inner_text()
        assert "t-1" in page.locator("#records tbody tr").nth(0).inner_text()
        assert "00000000  01 02 62 69 6e" in page.locator("#records tbody tr").nth(2).inner_text()
        checked(page, "messages")
        # ... and in each format chosen: the select submits the form as it changes.
        for chosen, shown in (("hex", ["hex", "hex", "hex"]), ("text", ["text", "text", "text"]),
                              ("json", ["json", "text", "text"])):
            page.select_option("#b-format", chosen)
            page.wait_for_url(re.compile(f"format={chosen}"))
            assert page.locator("#records tbody tr td:nth-child(5) pre").evaluate_all(
                "pres => pres.map(p => p.dataset.format)") == shown
        assert "00000000  70 6c 61 69 6e" in page.goto(f"{base}/topics/{topic}/messages?format=hex&q=plain").text()
        assert "not valid JSON" in page.goto(f"{base}/topics/{topic}/messages?format=json").text()

        # Filtered while reading, newest first, from an offset, from a timestamp, from the end.
        def offsets_shown(query: str) -> list[str]:
            page.goto(f"{base}/topics/{topic}/messages?{query}")
            return cells(page, "#records tbody tr td:nth-child(2)")

        assert offsets_shown("q=PLAIN") == ["1"]
        assert offsets_shown("q=t-1&field=headers") == ["0"]
        assert offsets_shown("q=t-1&field=value") == []
        assert page.locator("#no-records").is_visible()
        assert offsets_shown("order=newest") == ["2", "1", "0"]
        assert offsets_shown("partition=0&seek=offset&offset=1") == ["1", "2"]
        assert offsets_shown("partition=0&seek=offset&offset=1&order=newest") == ["1", "0"]
        assert offsets_shown("seek=end&limit=2") == ["1", "2"]
        assert offsets_shown("seek=timestamp&timestamp=2000-01-01T00:00:00Z") == ["0", "1", "2"]
        assert offsets_shown("seek=timestamp&timestamp=4000000000000") == []
        assert offsets_shown("partition=0&limit=2") == ["0", "1"]
        page.click("#next-page")
        assert cells(page, "#records tbody tr td:nth-child(2)") == ["2"]

        # The live tail shows a record a confluent-kafka producer sends while the page is open.
        page.goto(f"{base}/topics/{topic}/messages")
        page.click("#tail-toggle")
        # The console says it waits once it has the partitions' end offsets it tails from.
        page.wait_for_selector("#tail-status:has-text('Waiting for new records')")
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        producer.produce(topic, key=b"k-live", value=b"from confluent-kafka")
        assert producer.flush(20) == 0
        page.wait_for_selector("#tail-rows tr:has-text('from confluent-kafka')")
        assert page.locator("#tail-rows tr").first.get_attribute("data-offset") == "3"
        assert page.locator("#tail-status").inner_text() == "1 new record(s)."
        page.click("#tail-toggle")

        # A consumer group consumes the four records and commits: its lag falls to zero.
        with group_caught_up(page, base, {"bootstrap.servers": broker.bootstrap}, group, topic, 4):
            assert page.locator("#group-state").inner_text() == "Stable"
            assert cells(page, f'#lag tr[data-topic="{topic}"] td') [2:5] == ["4", "4", "0"]
            assert "rdkafka" in page.locator("#members").inner_text()
            checked(page, "group")
            page.goto(base + "/groups")
            assert page.locator(f'#groups tr[data-group="{group}"] td').nth(1).inner_text() == "Stable"
            checked(page, "groups")

        # Without members, its offsets are reset: a preview first, which commits nothing.
        until(lambda: page.goto(f"{base}/groups/{group}") and page.locator("#group-state").inner_text() == "Empty",
              30, "the group is Empty once its consumer left")
        page.fill("#r-topic", topic)
        page.select_option("#r-strategy", "shift")
        page.fill("#r-amount", "-3")
        page.click("#reset button[value=preview]")
        assert cells(page, "#plan tbody tr td") == [topic, "0", "4", "1"]
        assert page.locator("#total-lag").inner_text() == "0"
        checked(page, "group-reset-preview")
        page.click("#apply-reset button")
        page.wait_for_url(re.compile(r"done=Reset"))
        assert page.locator("#total-lag").inner_text() == "3"
        with Client(broker.bootstrap) as client:
            assert client.committed_offsets(group) == {(topic, 0): 1}

        # The topic deleted once its name is typed, then gone from the list.
        page.goto(f"{base}/topics/{topic}")
        assert page.locator("#delete-topic button").is_disabled()
        page.fill("#delete-confirm", topic[:-1])
        assert page.locator("#delete-topic button").is_disabled()
        page.fill("#delete-confirm", topic)
        page.click("#delete-topic button")
        page.wait_for_url(re.compile(r"/topics\?done=Deleted"))
        assert page.locator(f'#topics tr[data-topic="{topic}"]').count() == 0
        checked(page, "topics")
        page.goto(f"{base}/topics/{topic}")
        assert page.locator("#error-code").inner_text() == "Kafka error code 3 (UNKNOWN_TOPIC_OR_PARTITION)"
        checked(page, "error")
    finally:
        console.stop()


def test_read_only_console_shows_no_action_and_refuses_them(broker: BrokerProcess, browser: Any) -> None:
    topic = f"console-ro-{uuid.uuid4().hex[:8]}"
    with Client(broker.bootstrap) as client:
        client.create_topic(topic, 1, 1)
        client.produce(topic, [(b"k", b"v")])
    console = ConsoleProcess(broker.bootstrap, "--read-only")
    try:
        page = open_page(browser, console)
        for path in ("/topics", f"/topics/{topic}", f"/topics/{topic}/messages"):
            page.goto(console.url + path)
            assert page.locator("#read-only").is_visible()
            assert page.locator("form[method=post]").count() == 0, f"{path} offers a change"
        assert cells(page, "#records tbody tr td:nth-child(4)") == ["k"]
        checked(page, "read-only-messages")
        for path, form in (("/topics", {"name": "made-anyway"}), (f"/topics/{topic}/delete", {"confirm": topic}),
                           (f"/topics/{topic}/messages", {"value": "v"})):
            response = page.request.post(console.url + path, form=form)
            assert response.status == 403
            assert "read-only" in response.text()
        with Client(broker.bootstrap) as client:
            topics = client.metadata().topics
            assert "made-anyway" not in topics
            assert client.list_offsets(topic, [0], -1) == {0: 1}
    finally:
        console.stop()


def test_a_form_posted_from_another_site_is_refused(broker: BrokerProcess, browser: Any) -> None:
    console = ConsoleProcess(broker.bootstrap)
    try:
        page = open_page(browser, console)
        page.goto(console.url + "/topics")
        response = page.request.post(console.url + "/topics", form={"name": "from-elsewhere"},
                                     headers={"Origin": "http://attacker.example"})
        assert response.status == 403
        with Client(broker.bootstrap) as client:
            assert "from-elsewhere" not in client.metadata().topics
        assert page.request.get(console.url + "/topics", headers={"Host": "attacker.example"}).status == 400
    finally:
        console.stop()


def test_console_served_beside_a_broker_process(tmp_path: Path, browser: Any) -> None:
    topic = f"beside-{uuid.uuid4().hex[:8]}"
    with BrokerProcess(tmp_path, {"kafkapy.console.port": 0}) as process:
        match = until(lambda: _SERVING.search(process.output), 10, "the broker says where its console is",
                      lambda: process.output)
        with Client(process.bootstrap) as client:
            client.create_topic(topic, 2, 1)
        page = open_page(browser, ConsoleAt(match.group(1)))
        page.goto(match.group(1) + "/")
        assert f"127.0.0.1:{process.port}" in page.locator("#brokers").inner_text()
        page.goto(match.group(1) + "/topics")
        assert page.locator(f'#topics tr[data-topic="{topic}"]').count() == 1
        # A page left open on a live tail: the broker still stops on SIGTERM, gracefully.
        page.goto(f"{match.group(1)}/topics/{topic}/messages")
        page.click("#tail-toggle")
        page.wait_for_selector("#tail-status:has-text('Waiting for new records')")
        assert process.stop() == 0
        page.close()


def test_embedded_broker_serves_its_console_on_demand() -> None:
    # In a process of its own: whether the broker loads the web stack when not asked to.
    script = """
import sys, urllib.request
from kafkapy.client import EARLIEST, TOPIC_RESOURCE, Client
from kafkapy.testing.embedded import Broker
with Broker() as broker:
    print("console loaded before asked:", "kafkapy.console" in sys.modules or "uvicorn" in sys.modules)
    with Client(broker.bootstrap_servers) as client:
        client.create_topic("on-demand", 3, 1)
    url = broker.console_url
    assert broker.console_url == url  # served once
    print("url:", url)
    page = urllib.request.urlopen(url + "/topics/on-demand", timeout=20).read().decode()
    print("partitions:", page.split('id="partition-total">')[1].split("<")[0])
"""
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "console loaded before asked: False"
    assert re.fullmatch(r"url: http://127\.0\.0\.1:\d+", lines[1])
    assert lines[2] == "partitions: 3"


def test_async_broker_serves_its_console_when_configured() -> None:
    async def cluster_page() -> str:
        async with AsyncBroker(kafkapy_console_port=0) as broker:
            url = broker.console_url
            return await anyio.to_thread.run_sync(lambda: urllib.request.urlopen(url + "/", timeout=20).read().decode())

    # On a loop of its own thread: Playwright's sync API holds an asyncio loop in this one.
    with anyio.from_thread.start_blocking_portal(backend="asyncio") as portal:
        page = portal.call(cluster_page)
    assert '<dd id="broker-count">1</dd>' in page


def test_topic_configs_partitions_and_records_changed_from_the_topic_page(broker: BrokerProcess, browser: Any) -> None:
    topic = f"console-edit-{uuid.uuid4().hex[:8]}"
    with Client(broker.bootstrap) as client:
        client.create_topic(topic, 1, 1, {"retention.ms": "3600000"})
        client.produce(topic, [(None, b"%d" % i) for i in range(5)], partition=0)
    console = ConsoleProcess(broker.bootstrap)
    try:
        page = open_page(browser, console)
        page.goto(f"{console.url}/topics/{topic}")
        retention = '#configs tr[data-config="retention.ms"]'
        assert page.input_value(f"{retention} input[name='set.retention.ms']") == "3600000"
        # The default beside it: what the topic would have without its own value, here
        # Kafka's default of the broker key it falls back to.
        assert page.locator(f"{retention} td").nth(3).inner_text().split() == ["168", "(log.retention.hours)", "reset"]
        assert page.locator(f"{retention} td span").get_attribute("title") == "DEFAULT_CONFIG"
        checked(page, "topic-edit")

        # Two configs set at once (IncrementalAlterConfigs), the others left as they were.
        page.fill(f"{retention} input[name='set.retention.ms']", "7200000")
        page.fill("#configs input[name='set.max.message.bytes']", "2048")
        page.click("#save-configs")
        page.wait_for_url(re.compile(r"done=Set"))
        assert page.locator(".notice").inner_text() == "Set max.message.bytes=2048, retention.ms=7200000"
        with Client(broker.bootstrap) as client:
            overrides = {c.name: c.value for c in client.describe_configs(TOPIC_RESOURCE, topic) if c.source == 1}
        assert overrides == {"retention.ms": "7200000", "max.message.bytes": "2048"}

        # One reset to its default.
        page.check(f"{retention} input[name='reset.retention.ms']")
        page.click("#save-configs")
        page.wait_for_url(re.compile(r"done=Reset"))
        assert page.locator(".notice").inner_text() == "Reset retention.ms to the default"
        assert page.locator(f"{retention} td").nth(2).inner_text() == "DEFAULT_CONFIG"
        assert page.input_value(f"{retention} input[name='set.retention.ms']") == "604800000"

        # A value the broker refuses: its error, in words and by its Kafka code.
        page.fill(f"{retention} input[name='set.retention.ms']", "soon")
        page.click("#save-configs")
        assert page.locator("#error-code").inner_text() == "Kafka error code 40 (INVALID_CONFIG)"
        assert "retention.ms" in page.locator("#error-message").inner_text()

        # Partitions added, then records deleted before an offset, from the keyboard.
        page.goto(f"{console.url}/topics/{topic}")
        page.fill("#partition-count", "3")
        page.click("#add-partitions button")
        page.wait_for_url(re.compile(r"done=Topic"))
        assert page.locator("#partition-total").inner_text() == "3"
        tab_to(page, "delete-before", presses=200)
        page.keyboard.type("3")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"done=Partition"))
        assert page.locator(".notice").inner_text() == "Partition 0 now starts at offset 3"
        assert cells(page, "#partitions tbody tr:first-child td")[4:7] == ["3", "5", "2"]
        with Client(broker.bootstrap) as client:
            assert client.list_offsets(topic, [0, 1, 2], EARLIEST) == {0: 3, 1: 0, 2: 0}
        # Past the high watermark: Kafka's OFFSET_OUT_OF_RANGE, and nothing deleted.
        page.fill("#delete-before", "99")
        page.click("#delete-records button")
        assert page.locator("#error-code").inner_text() == "Kafka error code 1 (OFFSET_OUT_OF_RANGE)"
        with Client(broker.bootstrap) as client:
            assert client.list_offsets(topic, [0], EARLIEST) == {0: 3}
    finally:
        console.stop()


def test_tables_sort_and_filter_and_the_url_shares_both(broker: BrokerProcess, browser: Any) -> None:
    prefix = f"sorted-{uuid.uuid4().hex[:6]}"
    counts = {f"{prefix}-a": 0, f"{prefix}-b": 12, f"{prefix}-c": 3}
    with Client(broker.bootstrap) as client:
        for topic, count in counts.items():
            client.create_topic(topic, 1, 1)
            if count:
                client.produce(topic, [(None, b"v")] * count)
    console = ConsoleProcess(broker.bootstrap)
    try:
        page = open_page(browser, console)

        def shown_topics() -> list[str]:
            return page.locator("#topics tbody tr").evaluate_all("rows => rows.filter(r => !r.hidden).map(r => r.dataset.topic)")

        page.goto(f"{console.url}/topics?q={prefix}")
        assert shown_topics() == sorted(counts)
        # Sorted by message count from the keyboard: ascending (numbers, not text), then descending.
        tab_to(page, "sort-topics-3")
        page.keyboard.press("Enter")
        assert shown_topics() == [f"{prefix}-a", f"{prefix}-c", f"{prefix}-b"]
        assert page.locator("#topics th").nth(3).get_attribute("aria-sort") == "ascending"
        page.keyboard.press("Enter")
        assert shown_topics() == [f"{prefix}-b", f"{prefix}-c", f"{prefix}-a"]
        page.fill("#topic-search", f"{prefix}-")
        shared = page.evaluate("window.location.href")
        assert "sort=topics%3A3%3Adesc" in shared and f"q={prefix}-" in shared
        checked(page, "topics-sorted")

        # The URL opened elsewhere shows the same rows in the same order.
        other = open_page(browser, console)
        other.goto(shared)
        page = other
        assert shown_topics() == [f"{prefix}-b", f"{prefix}-c", f"{prefix}-a"]
        assert page.input_value("#topic-search") == f"{prefix}-"
        page.fill("#topic-search", f"{prefix}-c")
        assert shown_topics() == [f"{prefix}-c"]

        # A topic's configs: filtered and sorted by value, also kept in its URL.
        page.goto(f"{console.url}/topics/{prefix}-a?config=segment")
        names = page.locator("#configs tbody tr").evaluate_all("rows => rows.filter(r => !r.hidden).map(r => r.dataset.config)")
        assert {"segment.ms", "segment.bytes"} <= set(names) and "retention.ms" not in names
        page.click("#sort-configs-1")
        page.goto(page.evaluate("window.location.href"))
        values = page.locator("#configs tbody tr").evaluate_all(
            "rows => rows.filter(r => !r.hidden).map(r => Number(r.cells[1].dataset.sortValue))")
        assert len(values) == len(names) and values == sorted(values)
    finally:
        console.stop()


def test_transactions_and_producers(broker: BrokerProcess, browser: Any) -> None:
    topic, transactional_id = f"console-txn-{uuid.uuid4().hex[:8]}", f"txn-{uuid.uuid4().hex[:8]}"
    with Client(broker.bootstrap) as client:
        client.create_topic(topic, 2, 1)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": transactional_id})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"in a transaction", partition=1)
    assert producer.flush(20) == 0
    console = ConsoleProcess(broker.bootstrap)
    try:
        page = open_page(browser, console)
        page.goto(f"{console.url}/transactions")
        row = page.locator(f'#transactions tr[data-transactional-id="{transactional_id}"] td')
        assert row.all_inner_texts()[2:] == ["Ongoing", "1"]
        producer_id = row.nth(1).inner_text()
        assert producer_id.isdigit()
        checked(page, "transactions")
        row.first.locator("a").click()
        assert page.locator("#transaction-state").inner_text() == "Ongoing"
        assert cells(page, "#transaction-partitions tbody td") == [topic, "1"]
        assert page.locator("#producer-id").inner_text() == producer_id
        checked(page, "transaction")
        # The partition's leader knows the producer, and where its open transaction starts.
        page.goto(f"{console.url}/topics/{topic}")
        assert cells(page, "#producers tbody td")[:4] == ["1", producer_id, "0", "0"]
        assert cells(page, "#producers tbody td")[6] == "0"

        producer.commit_transaction(30)
        page.goto(f"{console.url}/transactions/{transactional_id}")
        assert page.locator("#transaction-state").inner_text() == "CompleteCommit"
        assert page.locator("#no-partitions").is_visible()
        page.goto(f"{console.url}/topics/{topic}")
        assert cells(page, "#producers tbody td")[6] == "-"
        page.goto(f"{console.url}/transactions/never-used-{transactional_id}")
        assert page.locator("#error-code").inner_text() == "Kafka error code 105 (TRANSACTIONAL_ID_NOT_FOUND)"
        # This broker has no authorizer: the ACLs say so, in Kafka's words.
        page.goto(f"{console.url}/security")
        assert "Kafka error code 54, SECURITY_DISABLED" in page.locator("#no-authorizer").inner_text()
        assert page.locator("#no-scram-users").is_visible()
    finally:
        console.stop()


def test_acls_and_scram_users_of_a_cluster_that_has_them(browser: Any) -> None:
    settings = {"listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users": "User:ANONYMOUS"}  # the console's plaintext connections
    with Broker(security="sasl_plaintext", mechanism="SCRAM-SHA-512", users={"alice": "secret", "bob": "hunter2"},
                **settings) as broker:
        with Client(broker.bootstrap_servers) as client:
            client.create_acls([Acl(ResourceType.TOPIC, "orders", PatternType.PREFIXED, "User:alice", "*",
                                    AclOperation.READ, AclPermission.ALLOW)])
        page = open_page(browser, ConsoleAt(broker.console_url))
        page.goto(broker.console_url + "/security")
        assert cells(page, "#acls tbody td") == ["TOPIC", "orders", "PREFIXED", "User:alice", "*", "READ", "ALLOW"]
        assert cells(page, '#scram-users tr[data-user="alice"] td') == ["alice", "SCRAM-SHA-512 (4096)"]
        assert cells(page, "#scram-users tbody td:first-child") == ["alice", "bob"]
        checked(page, "security")
        page.close()

    # A principal the authorizer does not let describe the cluster: each section says why, in Kafka's words.
    with Broker(**{"authorizer.class.name": settings["authorizer.class.name"]}) as refusing:
        page = open_page(browser, ConsoleAt(refusing.console_url))
        page.goto(refusing.console_url + "/security")
        for section in ("#acls-unavailable", "#scram-unavailable"):
            assert "(Kafka error code 31, CLUSTER_AUTHORIZATION_FAILED)" in page.locator(section).inner_text()
        page.close()


def test_compatibility_report_as_the_matrix_with_each_failures_cause(tmp_path: Path, broker: BrokerProcess,
                                                                     browser: Any) -> None:
    # A real run whose produce scenario fails: the broker takes no batch over 300 bytes.
    run = subprocess.run([sys.executable, "-m", "kafkapy", "compat", "--override", "message.max.bytes=300",
                          "--scenario", "produce.codec_none", "--scenario", "metadata.cluster", "--client", "confluent-kafka",
                          "--client", "kafka-python", "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    report = tmp_path / "compat.json"
    console = ConsoleProcess(broker.bootstrap, "--compat-report", str(report))
    try:
        page = open_page(browser, console)
        page.goto(console.url + "/compat")
        assert page.locator("#compat-matrix thead th").all_inner_texts() == ["Scenario", "confluent-kafka", "kafka-python"]
        statuses = page.locator("#compat-matrix tbody td[data-status]").evaluate_all(
            "cells => cells.map(c => [c.closest('tr').dataset.scenario, c.dataset.client, c.dataset.status])")
        assert statuses == [["metadata.cluster", "confluent-kafka", "pass"], ["metadata.cluster", "kafka-python", "pass"],
                            ["produce.codec_none", "confluent-kafka", "fail"], ["produce.codec_none", "kafka-python", "fail"]]
        failing = page.locator('#compat-matrix tr[data-scenario="produce.codec_none"] td[data-client="kafka-python"] .reason')
        assert failing.inner_text().startswith("MESSAGE_TOO_LARGE")
        assert [text.split(":")[0] for text in cells(page, "#failures li")] == [
            "produce.codec_none with confluent-kafka", "produce.codec_none with kafka-python"]
        assert "2 pass, 2 FAIL" in page.locator("#compat-summary").inner_text()
        checked(page, "compat")
        page.fill("#compat-search", "metadata")
        assert page.locator("#compat-matrix tbody tr:visible").count() == 1
        # A file that is not a report: said so, in words.
        report.write_text('{"target": "x"}')
        page.goto(console.url + "/compat")
        assert "not a report of `kafkapy compat`" in page.locator("#compat-problem").inner_text()
    finally:
        console.stop()


def test_live_charts_of_rates_and_lag_sampled_by_the_console(broker: BrokerProcess, browser: Any) -> None:
    topic, group = f"console-chart-{uuid.uuid4().hex[:8]}", f"chart-group-{uuid.uuid4().hex[:8]}"
    with Client(broker.bootstrap) as client:
        client.create_topic(topic, 1, 1)
        client.commit_offsets(group, {(topic, 0): 0})
    console = ConsoleProcess(broker.bootstrap, "--sample-interval", "0.2")
    try:
        page = open_page(browser, console)
        page.goto(console.url + "/charts")

        def series(chart_id: str) -> list[float]:
            # The page draws itself again from new samples: read what it shows now.
            values = page.locator(f'[id="{chart_id}"]').get_attribute("data-values", timeout=1000) or ""
            return [float(v) for v in values.split(",") if v]

        until(lambda: len(series(f"lag-{group}")) >= 2, 20, "the group's lag is charted", page.content)
        assert set(series(f"lag-{group}")) == {0.0}
        with Client(broker.bootstrap) as client:
            client.produce(topic, [(None, b"v")] * 40, partition=0)
        until(lambda: 40.0 in series(f"lag-{group}"), 20, "the lag rises to the 40 records produced",
              lambda: series(f"lag-{group}"))
        assert max(series(f"produce-{topic}")) > 0
        assert set(series(f"consume-{topic}")) == {0.0}
        with Client(broker.bootstrap) as client:
            client.commit_offsets(group, {(topic, 0): 40})
        until(lambda: series(f"lag-{group}")[-1] == 0.0, 20, "the lag falls back to zero", lambda: series(f"lag-{group}"))
        until(lambda: max(series(f"consume-{topic}")) > 0, 20, "the commits show as consumption")
        svg = page.locator(f'[id="lag-{group}"] svg')
        assert "Lag" in (svg.get_attribute("aria-label") or "")
        assert page.locator(f'[id="lag-{group}"] polyline').count() == 1
        checked(page, "charts")
        # A group's page links to its lag alone.
        page.goto(f"{console.url}/groups/{group}")
        page.click("#charts-link")
        assert page.locator("section.chart-pair").evaluate_all("s => s.map(e => e.dataset.group || e.dataset.topic)") == [group]
        assert series(f"lag-{group}")[-1] == 0.0
    finally:
        console.stop()


def test_every_section_is_reached_and_used_from_the_keyboard(broker: BrokerProcess, browser: Any) -> None:
    wanted, other = f"kbd-{uuid.uuid4().hex[:8]}", f"kbd-{uuid.uuid4().hex[:8]}"
    with Client(broker.bootstrap) as client:
        client.create_topic(wanted, 1, 1)
        client.create_topic(other, 1, 1)
    console = ConsoleProcess(broker.bootstrap)
    try:
        page = open_page(browser, console)
        page.goto(console.url + "/")
        # The first Tab stop skips the sidebar: Enter moves the focus into the page's content.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "content"
        for section, path in (("topics", "/topics"), ("groups", "/groups"), ("transactions", "/transactions"),
                              ("security", "/security"), ("charts", "/charts"), ("compat", "/compat"), ("cluster", "/")):
            page.goto(console.url + "/")
            tab_to(page, f"nav-{section}")
            page.keyboard.press("Enter")
            page.wait_for_url(console.url + path)
            assert page.locator(f"#nav-{section}").get_attribute("aria-current") == "page"
            checked(page, f"section-{section}")
        # A search typed from the keyboard narrows the table as it is typed.
        page.goto(console.url + "/topics")
        tab_to(page, "topic-search")
        page.keyboard.type(wanted)
        shown = page.locator("#topics tbody tr").evaluate_all("rows => rows.filter(r => !r.hidden).map(r => r.dataset.topic)")
        assert shown == [wanted]
    finally:
        console.stop()
