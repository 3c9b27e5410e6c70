PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run cluster cluster-stop lint test clean browser compat-clients compat

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kafkapy needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml setup.py kafkapy/wire/_records_scan.c
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

run: $(VENV)/.installed
	$(BIN)/kafkapy --override listeners=PLAINTEXT://127.0.0.1:9092 --override log.dirs=./kafkapy-data

# A three-node cluster on this machine ($(CLUSTER_CONFIG)/server-{1,2,3}.properties): one cluster id,
# kept in $(CLUSTER_DATA)/cluster.id so that a second `make cluster` reuses it; each node's
# storage formatted with it (again harmlessly); each node started in the background with
# its log appended to $(CLUSTER_DATA)/node-N.log and its pid in $(CLUSTER_DATA)/node-N.pid. A node
# whose pid file names a live process of that node's config is left running.
# Overridable, so that a test can run the same recipe on its own ports and directories.
CLUSTER_CONFIG ?= config
CLUSTER_DATA ?= kafkapy-data
CLUSTER_NODES := 1 2 3
# Seconds `make cluster-stop` waits after SIGTERM (a node's graceful stop is bounded by
# about 20 s) before it sends SIGKILL.
CLUSTER_STOP_TIMEOUT ?= 30

# True when pid file $(1) names a live process started with config $(2) (-ww: whole command
# lines, which ps would cut at 80 columns in a pipe): pids are reused,
# so a stale pid file must never make us signal someone else's process.
cluster_node_alive = [ -s $(1) ] && ps -ww -p "$$(cat $(1))" -o args= 2>/dev/null | grep -q -- "$(2)"

cluster: $(VENV)/.installed
	@mkdir -p $(CLUSTER_DATA)
	@[ -s $(CLUSTER_DATA)/cluster.id ] || $(BIN)/kafkapy storage random-uuid > $(CLUSTER_DATA)/cluster.id
	@for n in $(CLUSTER_NODES); do \
		config=$(CLUSTER_CONFIG)/server-$$n.properties; pidfile=$(CLUSTER_DATA)/node-$$n.pid; \
		if $(call cluster_node_alive,$$pidfile,$$config); then \
			echo "node $$n is already running (pid $$(cat $$pidfile))"; continue; \
		fi; \
		$(BIN)/kafkapy storage format --ignore-formatted --cluster-id "$$(cat $(CLUSTER_DATA)/cluster.id)" \
			--config $$config >/dev/null || exit 1; \
		nohup $(BIN)/kafkapy run $$config >>$(CLUSTER_DATA)/node-$$n.log 2>&1 </dev/null & echo $$! >$$pidfile; \
		echo "node $$n started (pid $$(cat $$pidfile)), log in $(CLUSTER_DATA)/node-$$n.log"; \
	done
	@echo "cluster $$(cat $(CLUSTER_DATA)/cluster.id) started; \`make cluster-stop\` stops it"

# Stops exactly the processes `make cluster` started, by their pid files: SIGTERM (a
# graceful stop), then SIGKILL to any still running after CLUSTER_STOP_TIMEOUT seconds.
cluster-stop:
	@pids=""; for n in $(CLUSTER_NODES); do \
		pidfile=$(CLUSTER_DATA)/node-$$n.pid; \
		if $(call cluster_node_alive,$$pidfile,$(CLUSTER_CONFIG)/server-$$n.properties); then \
			kill -TERM "$$(cat $$pidfile)" && pids="$$pids $$(cat $$pidfile)" && echo "node $$n: SIGTERM sent (pid $$(cat $$pidfile))"; \
		fi; \
		rm -f $$pidfile; \
	done; \
	waited=0; while [ -n "$$pids" ]; do \
		alive=""; for pid in $$pids; do kill -0 $$pid 2>/dev/null && alive="$$alive $$pid"; done; pids=$$alive; \
		[ -z "$$pids" ] && break; \
		if [ $$waited -ge $$(( $(CLUSTER_STOP_TIMEOUT) * 10 )) ]; then \
			echo "still running after $(CLUSTER_STOP_TIMEOUT) s, SIGKILL:$$pids"; kill -KILL $$pids 2>/dev/null; break; \
		fi; \
		sleep 0.1; waited=$$((waited + 1)); \
	done; echo "cluster stopped"

# The browser test of the compatibility report drives Debian's chromium; where it cannot
# be installed (no apt, not root), that one test skips and a parser check remains.
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
		&& { apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
		     || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }; } \
		|| echo "chromium is not installed: the browser test of the compatibility report will skip"; }

# The compatibility suite's clients of other languages: Node.js and Go with segmentio's
# kafka-go from Debian's packages (where apt can install them, as for the browser), and
# kafkajs from npm at the version its lock file pins, beside the helper that drives it.
# The kafka-go helper is built on first use, into the user's cache directory. Where a
# client cannot be had, the suite reports it as not available rather than failing.
KAFKAJS_HELPER := kafkapy/compat/adapters/helpers/kafkajs
COMPAT_DEBIAN_PACKAGES := nodejs npm golang-go golang-github-segmentio-kafka-go-dev
compat-clients:
	@{ command -v npm >/dev/null 2>&1 && command -v go >/dev/null 2>&1 && [ -d /usr/share/gocode/src/github.com/segmentio/kafka-go ]; } \
		|| { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
		&& { apt-get install -y -qq --no-install-recommends $(COMPAT_DEBIAN_PACKAGES) >/dev/null 2>&1 \
		     || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends $(COMPAT_DEBIAN_PACKAGES) >/dev/null 2>&1; }; } \
		|| echo "Node.js or Go's kafka-go is not installed: the compatibility suite will skip kafkajs or kafka-go"; }
	@if command -v npm >/dev/null 2>&1 && [ ! -f $(KAFKAJS_HELPER)/node_modules/.package-lock.json -o \
			$(KAFKAJS_HELPER)/package-lock.json -nt $(KAFKAJS_HELPER)/node_modules/.package-lock.json ]; then \
		npm ci --prefix $(KAFKAJS_HELPER) --no-audit --no-fund --loglevel=error >/dev/null \
			|| echo "npm could not install kafkajs: the compatibility suite will skip it"; \
	fi

# Every compatibility scenario with every client against a kafkapy of its own (`make test`
# runs every scenario with two clients and a representative one of each area with the
# others); the matrix goes to reports/.
compat: $(VENV)/.installed-test compat-clients
	$(BIN)/kafkapy compat

# Static checks, run by `make test` before the tests (configured in pyproject.toml;
# mypy checks the files it lists there, the package).
# Given checkouts of Apache Kafka (KAFKA_CHECKOUT: the internal records; KAFKA_3_9_CHECKOUT:
# Kafka 3.9, the message versions kio lacks), lint also checks that kafkapy/schema is what
# codegen makes of them today.
lint: $(VENV)/.installed-test
	$(BIN)/ruff check kafkapy tests compat_tests benchmarks examples codegen
	$(BIN)/mypy
	@if [ -n "$(KAFKA_CHECKOUT)$(KAFKA_3_9_CHECKOUT)" ]; then \
		$(BIN)/python -m codegen --check $(KAFKA_CHECKOUT) $(if $(KAFKA_3_9_CHECKOUT),--legacy-messages $(KAFKA_3_9_CHECKOUT)); \
	fi

test: lint browser compat-clients
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) kafkapy-data
