"""`kafkapy storage format` and `random-uuid`, as kafka-storage.sh: what each writes,
prints and exits with, and the directories it refuses."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from kafkapy.config import ConfigError
from kafkapy.server.meta_properties import load_meta_properties, random_cluster_id, read_meta_properties
from kafkapy.tools.storage import main

CLUSTER = "MkU3OEVBNTcwNTJENDM2Qg"
OTHER_CLUSTER = "q1Sh-9_ISia_zwGINzRvyQ"


def node_config(tmp_path: Path, node_id: int, dirs: list[Path]) -> Path:
    """A combined node's properties file with these log directories."""
    path = tmp_path / f"server-{node_id}.properties"
    path.write_text(
        "process.roles=broker,controller\n"
        f"node.id={node_id}\n"
        f"listeners=PLAINTEXT://127.0.0.1:{9092 + node_id},CONTROLLER://127.0.0.1:{9192 + node_id}\n"
        "controller.listener.names=CONTROLLER\n"
        "controller.quorum.voters=1@127.0.0.1:9193,2@127.0.0.1:9194,3@127.0.0.1:9195\n"
        f"log.dirs={','.join(str(d) for d in dirs)}\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_random_uuid_prints_a_kafka_uuid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "random-uuid")
    assert code == 0
    text = out.strip()
    assert len(text) == 22 and not text.startswith("-")
    assert len(base64.urlsafe_b64decode(text + "==")) == 16


def test_random_cluster_ids_never_start_with_a_dash_and_differ() -> None:
    ids = {random_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert not any(i.startswith("-") for i in ids)


def test_format_writes_meta_properties_into_each_log_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    code, out, err = run(capsys, "format", "--cluster-id", CLUSTER, "--config", str(node_config(tmp_path, 2, dirs)))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"Formatting metadata directory {dirs[0]} with metadata.version 3.9-IV0.",
        f"Formatting data directory {dirs[1]} with metadata.version 3.9-IV0.",
    ]
    props = [read_meta_properties(d) for d in dirs]
    assert [(p["node.id"], p["cluster.id"], p["version"]) for p in props if p] == [("2", CLUSTER, "1")] * 2
    directory_ids = {p["directory.id"] for p in props if p}
    assert len(directory_ids) == 2
    # What the broker reads back at start.
    assert load_meta_properties(dirs, 2, generate=False) == CLUSTER


def test_format_again_is_refused_unless_ignore_formatted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirs = [tmp_path / "a"]
    config = str(node_config(tmp_path, 1, dirs))
    assert run(capsys, "format", "-t", CLUSTER, "-c", config)[0] == 0
    before = (dirs[0] / "meta.properties").read_text()

    code, out, err = run(capsys, "format", "-t", CLUSTER, "-c", config)
    assert (code, out) == (1, "")
    assert err.strip() == (f"Log directory {dirs[0]} is already formatted. "
                           "Use --ignore-formatted to ignore this directory and format the others.")

    code, out, err = run(capsys, "format", "-t", CLUSTER, "-c", config, "--ignore-formatted")
    assert (code, out.strip(), err) == (0, "All of the log directories are already formatted.", "")
    assert (dirs[0] / "meta.properties").read_text() == before


def test_ignore_formatted_formats_the_directories_that_are_not(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert run(capsys, "format", "-t", CLUSTER, "-c", str(node_config(tmp_path, 1, [first])))[0] == 0
    code, out, _ = run(capsys, "format", "-g", "-t", CLUSTER, "-c", str(node_config(tmp_path, 1, [first, second])))
    assert code == 0
    assert out.splitlines() == [f"Formatting data directory {second} with metadata.version 3.9-IV0."]
    props = read_meta_properties(second) or {}
    assert (props.get("cluster.id"), props.get("node.id")) == (CLUSTER, "1")


def test_another_cluster_id_is_refused_even_with_ignore_formatted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert run(capsys, "format", "-t", CLUSTER, "-c", str(node_config(tmp_path, 1, [first])))[0] == 0
    code, out, err = run(capsys, "format", "-g", "-t", OTHER_CLUSTER, "-c", str(node_config(tmp_path, 1, [first, second])))
    assert (code, out) == (1, "")
    assert err.strip() == f"Invalid cluster.id in: {first / 'meta.properties'}. Expected {OTHER_CLUSTER}, but read {CLUSTER}"
    # Checked before anything is written: the other directory stays unformatted.
    assert read_meta_properties(second) is None


def test_another_node_id_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "a"
    assert run(capsys, "format", "-t", CLUSTER, "-c", str(node_config(tmp_path, 1, [d])))[0] == 0
    code, _, err = run(capsys, "format", "-g", "-t", CLUSTER, "-c", str(node_config(tmp_path, 3, [d])))
    assert code == 1
    assert err.startswith(f"Stored node id 1 doesn't match previous node id 3 in {d / 'meta.properties'}.")


def test_overrides_and_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(node_config(tmp_path, 1, [tmp_path / "a"]))
    code, _, _ = run(capsys, "format", "-t", CLUSTER, "-c", config, "--override", f"log.dirs={tmp_path / 'b'}")
    assert code == 0
    assert read_meta_properties(tmp_path / "b") is not None and read_meta_properties(tmp_path / "a") is None

    code, _, err = run(capsys, "format", "-t", CLUSTER, "-c", config, "--override", "node.id=7")
    assert code == 1 and "node id 7 must be included in the set of voters" in err
    code, _, err = run(capsys, "format", "-t", CLUSTER, "-c", str(tmp_path / "missing.properties"))
    assert code == 1 and "configuration error" in err


def test_a_missing_argument_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["format", "--config", str(node_config(tmp_path, 1, [tmp_path / "a"]))])
    assert exited.value.code == 1
    assert "--cluster-id" in capsys.readouterr().err


def test_a_multi_voter_node_starts_only_on_formatted_storage(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kafkapy storage format"):
        load_meta_properties([tmp_path / "a"], 1, generate=False)


def test_the_command_line(tmp_path: Path) -> None:
    config = str(node_config(tmp_path, 1, [tmp_path / "a"]))
    uuid = subprocess.run([sys.executable, "-m", "kafkapy", "storage", "random-uuid"],
                          capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    result = subprocess.run([sys.executable, "-m", "kafkapy", "storage", "format", "-t", uuid, "-c", config],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert (read_meta_properties(tmp_path / "a") or {})["cluster.id"] == uuid
