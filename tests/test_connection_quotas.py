from kafkapy.server.connection_quotas import ConnectionQuotas, RequestMemory


def test_an_address_over_its_limit_is_refused_and_not_counted():
    quotas = ConnectionQuotas(max_connections=100, max_per_ip=2, per_ip_overrides={"10.0.0.9": 0, "10.0.0.7": 3})
    assert [quotas.admit("10.0.0.1") for _ in range(3)] == [True, True, False]
    assert [quotas.admit("10.0.0.7") for _ in range(4)] == [True, True, True, False]
    assert not quotas.admit("10.0.0.9")
    assert quotas.total == 5
    quotas.released("10.0.0.1")
    assert quotas.admit("10.0.0.1")


def test_the_broker_wide_limit_spares_the_protected_listener():
    quotas = ConnectionQuotas(max_connections=2, max_per_ip=10, per_ip_overrides={})
    assert quotas.admit("10.0.0.1") and quotas.admit("10.0.0.2")
    assert not quotas.slot_available(protected_listener=False)
    assert quotas.slot_available(protected_listener=True)
    quotas.released("10.0.0.2")
    assert quotas.slot_available(protected_listener=False)


def test_request_memory_lets_a_frame_through_while_any_is_left_then_stops():
    memory = RequestMemory(100)
    memory.take(60)
    assert not memory.exhausted
    memory.take(60)  # larger than what is left: taken, as Kafka's pool for requests allows
    assert memory.exhausted and memory.available == -20
    assert not memory.release(10)  # still none left
    assert memory.release(50)  # this release ends the exhaustion
    assert memory.available == 40
