from hypothesis import HealthCheck, settings

# File-backed examples can exceed hypothesis' default 200 ms deadline on a loaded
# machine; every test is bounded by pytest-timeout instead.
settings.register_profile("kafkapy", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kafkapy")
