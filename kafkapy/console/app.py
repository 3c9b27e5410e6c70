"""The console's web application (Starlette): server-rendered pages of the cluster, its
topics, their records and the consumer groups, the forms that change them, and a live
tail over server-sent events. Every call to the cluster goes through the client pool, in
a worker thread."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import anyio
import anyio.to_thread
from kio.schema.errors import ErrorCode
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..client import (
    RESETTABLE_STATES,
    TOPIC_RESOURCE,
    BrokerUnreachable,
    Client,
    ClientError,
    ClientSecurity,
    KafkaError,
    SslAuthenticationFailed,
)
from . import reads
from .browse import MAX_LIMIT, SEEKS, BrowseQuery, Tail, browse, shown_record
from .clients import ClientPool
from .compat import CompatReportError, read_matrix
from .export import record_line
from .forms import (
    FormError,
    config_changes,
    config_lines,
    format_size,
    format_timestamp,
    header_lines,
    integer,
    optional_integer,
    partition_list,
    timestamp_ms,
)
from .metrics import DEFAULT_SAMPLE_INTERVAL_S, HEIGHT, MAX_SAMPLES, WIDTH, History, chart
from .offsets import ResetPlanError, ResetStrategy
from .values import FILTER_FIELDS, FORMATS, record_matches

log = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).parent
# A form is small; a produced record's value is the largest thing one carries.
MAX_FORM_BYTES = 1 << 20
# The names the console answers to: a page of another name reached it through DNS
# rebinding, and must not read the cluster through it.
LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
NOT_FOUND_CODES = (ErrorCode.unknown_topic_or_partition, ErrorCode.group_id_not_found, ErrorCode.transactional_id_not_found)


class Refused(Exception):
    """A request the console will not serve: a change in read-only mode, or a form posted from another site."""


class Console:
    def __init__(self, bootstrap: str, read_only: bool = False, compat_report: Path | None = None,
                 sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S, security: ClientSecurity | None = None) -> None:
        self.bootstrap = bootstrap
        self.read_only = read_only
        self.compat_report = compat_report
        self.sample_interval_s = sample_interval_s
        self.history = History()
        self.pool = ClientPool(bootstrap, security)
        self.templates = Jinja2Templates(directory=PACKAGE_DIR / "templates")
        self.templates.env.filters["timestamp"] = format_timestamp
        self.templates.env.filters["size"] = format_size

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        context |= {"read_only": self.read_only, "bootstrap": self.bootstrap, "notice": request.query_params.get("done")}
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    async def failure(self, request: Request, error: Exception) -> Response:
        code, code_name = (int(error.code), error.name) if isinstance(error, KafkaError) else (None, None)
        if isinstance(error, Refused):
            status = 403
        elif isinstance(error, FormError | ResetPlanError):
            status = 400
        elif isinstance(error, KafkaError):
            status = 404 if code in NOT_FOUND_CODES else 400
        else:
            # The cluster cannot be reached, or not over TLS with these settings: a bad gateway.
            status = 502 if isinstance(error, BrokerUnreachable | SslAuthenticationFailed) else 500
        return self.page(request, "error.html", status, message=str(error), code=code, code_name=code_name)

    async def form(self, request: Request) -> dict[str, str]:
        """A posted form's fields, once the request may change the cluster."""
        if self.read_only:
            raise Refused("the console is read-only (--read-only): it changes nothing in the cluster")
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            raise Refused(f"a form posted from {origin} is refused: only the console's own pages may change the cluster")
        if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
            raise FormError(f"the form is larger than {MAX_FORM_BYTES // 1024} KiB")
        body = await request.body()
        return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))

    # Cluster and topics

    async def cluster(self, request: Request) -> Response:
        overview = await self.pool.run(reads.cluster_overview)
        return self.page(request, "cluster.html", overview=overview, section="cluster")

    async def topics(self, request: Request) -> Response:
        topics = await self.pool.run(reads.topic_summaries)
        return self.page(request, "topics.html", topics=topics, search=request.query_params.get("q", ""), section="topics")

    async def create_topic(self, request: Request) -> Response:
        fields = await self.form(request)
        name = fields.get("name", "").strip()
        if not name:
            raise FormError("Name: a topic needs a name")
        partitions = integer(fields, "partitions", "Partitions", default=-1)
        replication = integer(fields, "replication_factor", "Replication factor", default=-1)
        configs = config_lines(fields.get("configs", ""))
        await self.pool.run(lambda c: c.create_topic(name, partitions, replication, configs))
        return _redirect(f"/topics/{name}", f"Created topic {name}")

    async def topic(self, request: Request) -> Response:
        name = request.path_params["name"]
        detail = await self.pool.run(lambda c: reads.topic_detail(c, name))
        return self.page(request, "topic.html", topic=detail, section="topics")

    async def delete_topic(self, request: Request) -> Response:
        name = request.path_params["name"]
        fields = await self.form(request)
        if fields.get("confirm") != name:
            raise FormError(f"Confirm: type the topic's name, {name}, to delete it")
        await self.pool.run(lambda c: c.delete_topic(name))
        return _redirect("/topics", f"Deleted topic {name}")

    async def add_partitions(self, request: Request) -> Response:
        name = request.path_params["name"]
        count = integer(await self.form(request), "count", "New partition count", minimum=1)
        await self.pool.run(lambda c: c.create_partitions(name, count))
        return _redirect(f"/topics/{name}", f"Topic {name} now has {count} partitions")

    async def edit_configs(self, request: Request) -> Response:
        name = request.path_params["name"]
        fields = await self.form(request)

        def alter(client: Client) -> tuple[dict[str, str], list[str]]:
            current = {c.name: c.value for c in client.describe_configs(TOPIC_RESOURCE, name)}
            changed, reset = config_changes(fields, current)
            if changed or reset:
                client.alter_configs(TOPIC_RESOURCE, name, changed, reset)
            return changed, reset

        changed, reset = await self.pool.run(alter)
        done = ([f"Set {', '.join(f'{k}={v}' for k, v in sorted(changed.items()))}"] if changed else []) + \
               ([f"Reset {', '.join(reset)} to the default"] if reset else [])
        return _redirect(f"/topics/{name}", "; ".join(done) or "No config changed")

    async def delete_records(self, request: Request) -> Response:
        name = request.path_params["name"]
        fields = await self.form(request)
        partition = integer(fields, "partition", "Partition", minimum=0)
        offset = integer(fields, "offset", "Before offset", minimum=-1)
        starts = await self.pool.run(lambda c: c.delete_records(name, {partition: offset}))
        return _redirect(f"/topics/{name}", f"Partition {partition} now starts at offset {starts[partition]}")

    # Messages

    def browse_query(self, request: Request) -> BrowseQuery:
        params = request.query_params
        seek = params.get("seek", "beginning")
        if seek not in SEEKS:
            raise FormError(f"Start from: {seek!r} is not one of {', '.join(SEEKS)}")
        value_format = params.get("format", "auto")
        field = params.get("field", "any")
        if value_format not in FORMATS or field not in FILTER_FIELDS:
            raise FormError(f"Show values as: one of {', '.join(FORMATS)}; Filter on: one of {', '.join(FILTER_FIELDS)}")
        return BrowseQuery(
            partition=optional_integer(params, "partition", "Partition"), seek=seek,
            offset=integer(params, "offset", "Offset", default=0, minimum=0),
            timestamp_ms=timestamp_ms(params["timestamp"]) if seek == "timestamp" else 0,
            newest_first=params.get("order") == "newest",
            limit=min(integer(params, "limit", "Records per page", default=50, minimum=1), MAX_LIMIT),
            needle=params.get("q", ""), field=field, value_format=value_format)

    async def messages(self, request: Request) -> Response:
        name = request.path_params["name"]
        query = self.browse_query(request)
        detail = await self.pool.run(lambda c: reads.topic_detail(c, name))
        result = await self.pool.run(lambda c: browse(c, name, query))
        params = dict(request.query_params)
        next_page = None
        if result.next_offset is not None:
            next_page = urlencode(params | {"seek": "offset", "offset": result.next_offset,
                                            "order": "newest" if query.backward else "oldest"})
        shown = urlencode({k: v for k, v in params.items() if k != "done"})
        return self.page(request, "messages.html", topic=detail, query=query, result=result, params=params,
                         next_page=next_page, download_query=shown, tail_query=urlencode({k: params.get(k, "") for k in ("partition", "q", "field", "format")}),
                         seeks=SEEKS, formats=FORMATS, fields=FILTER_FIELDS, section="topics")

    async def download(self, request: Request) -> Response:
        """The records the messages page shows for the same query, as JSON lines."""
        name = request.path_params["name"]
        query = self.browse_query(request)
        result = await self.pool.run(lambda c: browse(c, name, query))

        async def lines() -> AsyncIterator[str]:
            for partition, record in result.read:
                yield record_line(partition, record, query.value_format)

        return StreamingResponse(lines(), media_type="application/x-ndjson", headers={
            "Content-Disposition": f'attachment; filename="{name}.jsonl"', "Cache-Control": "no-store"})

    async def produce(self, request: Request) -> Response:
        name = request.path_params["name"]
        fields = await self.form(request)
        partition = optional_integer(fields, "partition", "Partition")
        key = fields.get("key", "").encode() or None
        value = None if fields.get("null_value") else fields.get("value", "").encode()
        headers = header_lines(fields.get("headers", ""))
        sent = await self.pool.run(lambda c: c.produce(name, [(key, value)], partition, headers=headers))
        [chosen] = sent
        target = f"/topics/{name}/messages?" + urlencode({"partition": chosen, "seek": "end", "order": "newest"})
        return _redirect(target, f"Produced a record to partition {chosen}")

    async def tail(self, request: Request) -> Response:
        """New records as server-sent events, one JSON object each, until the page goes away."""
        name = request.path_params["name"]
        params = request.query_params
        partition = optional_integer(params, "partition", "Partition")
        needle, field, value_format = params.get("q", ""), params.get("field", "any"), params.get("format", "auto")
        client = self.pool.new_client()  # its own: a tail holds it for as long as the page is open
        try:
            tail = await anyio.to_thread.run_sync(Tail, client, name, partition)
        except BaseException:
            client.close()
            raise

        async def events() -> Any:
            try:
                # The tail's start offsets are fixed: what is produced from now on is shown.
                yield "retry: 3000\nevent: ready\ndata: {}\n\n"
                while True:
                    arrived = await anyio.to_thread.run_sync(tail.poll)
                    for p, record in arrived:
                        if record_matches(needle, field, record.key, record.value, record.headers):
                            shown = shown_record(p, record, value_format)
                            yield "data: " + json.dumps({
                                "partition": p, "offset": shown.offset, "timestamp": format_timestamp(shown.timestamp),
                                "key": shown.key.text, "value": shown.value.text, "format": shown.value.format,
                                "headers": shown.headers}) + "\n\n"
                    if not arrived:
                        yield ": idle\n\n"  # a write is how a closed page is noticed
            except ClientError as e:
                yield "event: failure\ndata: " + json.dumps(str(e)) + "\n\n"
            finally:
                client.close()

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    # Transactions and security

    async def transactions(self, request: Request) -> Response:
        listings = await self.pool.run(lambda c: c.list_transactions())
        return self.page(request, "transactions.html", transactions=listings, section="transactions")

    async def transaction(self, request: Request) -> Response:
        transactional_id = request.path_params["transactional_id"]
        info = await self.pool.run(lambda c: c.describe_transaction(transactional_id))
        return self.page(request, "transaction.html", txn=info, section="transactions")

    async def security(self, request: Request) -> Response:
        overview = await self.pool.run(reads.security_overview)
        return self.page(request, "security.html", security=overview, section="security")

    async def compat(self, request: Request) -> Response:
        """The compatibility report, read anew each time: a later `kafkapy compat` run shows at once."""
        matrix, problem = None, None
        if self.compat_report is not None:
            try:
                matrix = read_matrix(await anyio.to_thread.run_sync(self.compat_report.read_text))
            except OSError as e:
                problem = f"{self.compat_report}: cannot be read: {e.strerror or e}"
            except CompatReportError as e:
                problem = f"{self.compat_report}: {e}"
        return self.page(request, "compat.html", matrix=matrix, problem=problem, section="compat")

    # Charts

    async def sample_forever(self) -> None:
        """Samples the cluster's offsets for the charts, for as long as the console runs."""
        failing = None  # said once, not at every sample, until sampling works again
        while True:
            at_ms = int(time.monotonic() * 1000)
            try:
                self.history.add(await self.pool.run(functools.partial(reads.sample_offsets, at_ms=at_ms)))
                failing = None
            except ClientError as e:
                if str(e) != failing:
                    log.warning("The charts miss samples: %s", e)
                failing = str(e)
            await anyio.sleep(self.sample_interval_s)

    async def charts(self, request: Request) -> Response:
        history = self.history
        wanted_topic, wanted_group = request.query_params.get("topic"), request.query_params.get("group")
        topics = [(t, chart(history.produce_rate(t)), chart(history.consume_rate(t)))
                  for t in history.topics if wanted_topic in (None, t) and wanted_group is None]
        groups = [(g, chart(history.lag(g))) for g in history.groups if wanted_group in (None, g) and wanted_topic is None]
        template = "charts_body.html" if request.query_params.get("fragment") else "charts.html"
        return self.page(request, template, topics=topics, groups=groups, samples=len(history.samples),
                         interval_s=self.sample_interval_s, max_samples=MAX_SAMPLES, width=WIDTH, height=HEIGHT, section="charts")

    # Consumer groups

    async def groups(self, request: Request) -> Response:
        groups = await self.pool.run(reads.group_rows)
        return self.page(request, "groups.html", groups=groups, section="groups")

    async def group(self, request: Request, plan: Any = None, reset: dict[str, str] | None = None) -> Response:
        group = request.path_params["group"]
        detail = await self.pool.run(lambda c: reads.group_detail(c, group))
        if not detail.exists:
            raise KafkaError(ErrorCode.group_id_not_found, f"consumer group {group!r}")
        return self.page(request, "group.html", group=detail, plan=plan, reset=reset or {},
                         strategies=list(ResetStrategy), resettable=detail.info.state in RESETTABLE_STATES,
                         section="groups")

    async def reset_offsets(self, request: Request) -> Response:
        group = request.path_params["group"]
        fields = await self.form(request)
        try:
            strategy = ResetStrategy(fields.get("strategy", ""))
        except ValueError:
            raise FormError(f"Reset to: choose one of {', '.join(s.value for s in ResetStrategy)}") from None
        if strategy is ResetStrategy.TIMESTAMP:
            amount = timestamp_ms(fields.get("amount", ""))
        elif strategy in (ResetStrategy.OFFSET, ResetStrategy.SHIFT):
            amount = integer(fields, "amount", "Offset or shift")
        else:
            amount = 0
        chosen = fields.get("topic", "")

        def plan(client: Any) -> Any:
            topics = [chosen] if chosen else sorted({t for t, _ in client.committed_offsets(group)})
            if not topics:
                raise FormError("Topic: the group has committed no offsets; choose the topic to reset")
            return reads.plan_group_reset(client, group, topics, strategy, amount)

        planned = await self.pool.run(plan)
        if fields.get("action") != "apply":
            return await self.group(request, plan=planned, reset=fields)
        await self.pool.run(lambda c: reads.apply_group_reset(c, group, planned))
        return _redirect(f"/groups/{group}", f"Reset the offsets of group {group} for {len(planned)} partition(s)")

    async def delete_group(self, request: Request) -> Response:
        group = request.path_params["group"]
        fields = await self.form(request)
        if fields.get("confirm") != group:
            raise FormError(f"Confirm: type the group's name, {group}, to delete it")
        await self.pool.run(lambda c: c.delete_group(group))
        return _redirect("/groups", f"Deleted group {group}")


    async def delete_group_offsets(self, request: Request) -> Response:
        group = request.path_params["group"]
        fields = await self.form(request)
        topic = fields.get("topic", "").strip()
        if not topic:
            raise FormError("Topic: name the topic whose offsets to delete")
        named = partition_list(fields.get("partitions", ""), "Partitions")

        def delete(client: Client) -> list[int]:
            # As Kafka's tool does, a topic alone means each of its partitions.
            partitions = named or sorted(client.topic(topic).partitions)
            client.delete_group_offsets(group, topic, partitions)
            return partitions

        deleted = await self.pool.run(delete)
        return _redirect(f"/groups/{group}", f"Deleted the offsets of group {group} for {topic} "
                                             f"partition(s) {', '.join(map(str, deleted))}")


def _redirect(path: str, notice: str) -> Response:
    """After a change, the page that shows it (303: the browser asks for it with GET)."""
    separator = "&" if "?" in path else "?"
    return RedirectResponse(path + separator + urlencode({"done": notice}), status_code=303)


def create_app(bootstrap: str, read_only: bool = False, compat_report: Path | None = None,
               sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S, security: ClientSecurity | None = None) -> Starlette:
    console = Console(bootstrap, read_only, compat_report, sample_interval_s, security)
    routes = [
        Route("/", console.cluster),
        Route("/topics", console.topics),
        Route("/topics", console.create_topic, methods=["POST"]),
        Route("/topics/{name}", console.topic),
        Route("/topics/{name}/delete", console.delete_topic, methods=["POST"]),
        Route("/topics/{name}/partitions", console.add_partitions, methods=["POST"]),
        Route("/topics/{name}/configs", console.edit_configs, methods=["POST"]),
        Route("/topics/{name}/records/delete", console.delete_records, methods=["POST"]),
        Route("/topics/{name}/messages", console.messages),
        Route("/topics/{name}/messages", console.produce, methods=["POST"]),
        Route("/topics/{name}/messages.jsonl", console.download),
        Route("/topics/{name}/tail", console.tail),
        Route("/transactions", console.transactions),
        Route("/transactions/{transactional_id}", console.transaction),
        Route("/security", console.security),
        Route("/compat", console.compat),
        Route("/charts", console.charts),
        Route("/groups", console.groups),
        Route("/groups/{group}", console.group),
        Route("/groups/{group}/reset", console.reset_offsets, methods=["POST"]),
        Route("/groups/{group}/delete", console.delete_group, methods=["POST"]),
        Route("/groups/{group}/offsets/delete", console.delete_group_offsets, methods=["POST"]),
        Mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static"),
    ]
    handlers: Any = dict.fromkeys((ClientError, FormError, ResetPlanError, Refused), console.failure)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(console.sample_forever)
            yield
            tg.cancel_scope.cancel()
        console.pool.close()

    return Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan,
                     middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=LOCAL_HOSTS)])
