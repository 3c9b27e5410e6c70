"""segmentio's kafka-go, the Go client, through a Go helper (helpers/kafka_go/main.go).

The helper is built offline against Debian's packages (golang-go and
golang-github-segmentio-kafka-go-dev, which `make compat-clients` installs where apt can),
in GOPATH mode from Debian's Go source tree, once per version of its source into the
user's cache directory.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from .bridge import BridgedClient

SOURCE = Path(__file__).parent / "helpers" / "kafka_go" / "main.go"
# Where Debian's golang-*-dev packages put Go sources.
DEBIAN_GOPATH = Path("/usr/share/gocode")
LIBRARY = DEBIAN_GOPATH / "src" / "github.com" / "segmentio" / "kafka-go"
BUILD_TIMEOUT_S = 300


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kafkapy" / "compat"


@functools.cache
def _built() -> Path | str:
    """The helper's binary, built if this version of its source has not been; or why it
    cannot be built."""
    go = shutil.which("go")
    if go is None:
        return "kafka-go needs Debian's Go (golang-go), which is not installed (`make compat-clients` installs it)"
    if not LIBRARY.is_dir():
        return f"kafka-go is not installed ({LIBRARY}: `make compat-clients` installs golang-github-segmentio-kafka-go-dev)"
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=False).stdout
    digest = hashlib.sha256(SOURCE.read_bytes() + version.encode()).hexdigest()[:16]
    cache = _cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    binary = cache / f"kafka-go-helper-{digest}"
    # Workers and runners may ask at once: one builds, the others wait for it.
    with open(cache / "kafka-go-helper.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return binary
        partial = binary.with_suffix(".partial")
        env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(DEBIAN_GOPATH), "GOFLAGS": "", "GOPROXY": "off",
               "GOCACHE": str(cache / "go-build")}
        built = subprocess.run([go, "build", "-o", str(partial), str(SOURCE)], capture_output=True, text=True,
                               env=env, timeout=BUILD_TIMEOUT_S, check=False)
        if built.returncode != 0:
            return f"the kafka-go helper does not build: {built.stderr.strip()[-500:]}"
        partial.rename(binary)
        return binary


class KafkaGo(BridgedClient):
    name = "kafka-go"

    @classmethod
    def unavailable(cls) -> str | None:
        built = _built()
        return built if isinstance(built, str) else None

    @classmethod
    def helper_argv(cls) -> list[str]:
        built = _built()
        assert isinstance(built, Path), built
        return [str(built)]
