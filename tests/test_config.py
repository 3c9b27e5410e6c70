import pytest

from kafkapy.config import BrokerConfig, ConfigError, ConfigSource, effective_topic_configs, load_properties


def test_retention_hours_feed_the_topic_default():
    config = BrokerConfig({"log.retention.hours": "2"})
    assert config.topic_default("retention.ms") == (7_200_000, ConfigSource.STATIC_BROKER_CONFIG, "log.retention.hours")


def test_retention_ms_wins_over_hours():
    config = BrokerConfig({"log.retention.hours": "2", "log.retention.ms": "5"})
    assert config.get("log.retention.ms") == 5
    assert config.topic_default("retention.ms")[0] == 5


def test_defaults_are_kafkas():
    config = BrokerConfig()
    assert config.topic_default("retention.ms") == (604_800_000, ConfigSource.DEFAULT_CONFIG, "log.retention.ms")
    assert config.topic_default("segment.bytes")[0] == 1_073_741_824
    assert config.int("num.partitions") == 1
    assert config.int("message.max.bytes") == 1_048_588


def test_unknown_key_is_an_error():
    with pytest.raises(ConfigError, match="Unknown configuration key 'log.retention.weeks'"):
        BrokerConfig({"log.retention.weeks": "1"})


def test_bad_value_is_an_error():
    with pytest.raises(ConfigError, match="num.partitions"):
        BrokerConfig({"num.partitions": "zero"})
    with pytest.raises(ConfigError, match="at least 1"):
        BrokerConfig({"num.partitions": "0"})


def test_topic_override_and_validation():
    values = effective_topic_configs({"cleanup.policy": "compact,delete"}, BrokerConfig())
    assert values["cleanup.policy"] == ["compact", "delete"]
    with pytest.raises(ConfigError):
        effective_topic_configs({"cleanup.policy": "shred"}, BrokerConfig())
    with pytest.raises(ConfigError, match="Unknown topic config"):
        effective_topic_configs({"retention.weeks": "1"}, BrokerConfig())


def test_properties_file_syntax():
    text = "# comment\n! also a comment\nlisteners=PLAINTEXT://127.0.0.1:9092\nnum.partitions : 3\nlog.dirs /tmp/x\n"
    assert load_properties(text) == {"listeners": "PLAINTEXT://127.0.0.1:9092", "num.partitions": "3", "log.dirs": "/tmp/x"}


def test_overrides_from_command_line(tmp_path):
    props = tmp_path / "server.properties"
    props.write_text("num.partitions=3\n")
    config = BrokerConfig.from_sources(props, ["num.partitions=5", "auto.create.topics.enable=false"])
    assert config.int("num.partitions") == 5
    assert config.bool("auto.create.topics.enable") is False


def test_connection_limits_have_kafkas_defaults():
    config = BrokerConfig()
    assert config.int("queued.max.request.bytes") == -1
    assert config.int("max.connections") == config.int("max.connections.per.ip") == 2**31 - 1
    assert config.connections_per_ip_overrides == {}
    assert config.int("connections.max.idle.ms") == 600_000


def test_queued_max_request_bytes_below_socket_request_max_bytes_is_refused():
    with pytest.raises(ConfigError, match="queued.max.request.bytes must be larger or equal to socket.request.max.bytes"):
        BrokerConfig({"queued.max.request.bytes": "1000"})
    assert BrokerConfig({"queued.max.request.bytes": "104857600"}).int("queued.max.request.bytes") == 104_857_600


def test_max_connections_per_ip_zero_needs_overrides():
    with pytest.raises(ConfigError, match="max.connections.per.ip can be zero only if max.connections.per.ip.overrides is set"):
        BrokerConfig({"max.connections.per.ip": "0"})
    assert BrokerConfig({"max.connections.per.ip": "0", "max.connections.per.ip.overrides": "127.0.0.1:5"}).int("max.connections.per.ip") == 0


def test_max_connections_per_ip_overrides_are_host_count_pairs():
    config = BrokerConfig({"max.connections.per.ip.overrides": " hostName:100 , 127.0.0.1:200,"})
    assert config.connections_per_ip_overrides == {"hostName": 100, "127.0.0.1": 200}
    for bad in ("hostName", "hostName:many", ":5", "hostName:-1"):
        with pytest.raises(ConfigError, match="max.connections.per.ip.overrides"):
            BrokerConfig({"max.connections.per.ip.overrides": bad})
