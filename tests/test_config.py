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
