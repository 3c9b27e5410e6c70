"""Faults from any language: a broker process with its HTTP control channel on, driven
here by a child process that knows only HTTP (it could be a Go or Java test).

Run: pytest examples/test_control_channel.py
"""

import json
import subprocess
import sys
import textwrap
import urllib.request

from confluent_kafka import Producer

from kafkapy.testing.process import BrokerProcess

# What a test in another language would do: inject a fault over HTTP.
INJECT = textwrap.dedent("""
    import json, sys, urllib.request
    url, token = sys.argv[1:]
    spec = {"kind": "error", "api_key": 0, "error": "NOT_LEADER_OR_FOLLOWER", "count": 2}
    request = urllib.request.Request(url + "/faults", data=json.dumps(spec).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    print(urllib.request.urlopen(request, timeout=10).read().decode())
""")


def test_a_fault_injected_over_http_fires_and_is_reported(tmp_path):
    with BrokerProcess(tmp_path, {"kafkapy.control.port": 0}) as broker:
        # The address and token are printed at start; BrokerProcess read them from there.
        created = subprocess.run([sys.executable, "-c", INJECT, broker.control_url, broker.control_token],
                                 capture_output=True, text=True, timeout=30, check=True)
        fault = json.loads(created.stdout)["fault"]
        assert fault["error_name"] == "NOT_LEADER_OR_FOLLOWER"

        producer = Producer({"bootstrap.servers": broker.bootstrap, "retry.backoff.ms": 10})
        delivered = []
        producer.produce("orders", b"first", on_delivery=lambda err, msg: delivered.append((err, msg.offset())))
        assert producer.flush(30) == 0
        assert delivered == [(None, 0)]  # retried past the two injected errors

        listing = urllib.request.Request(broker.control_url + "/faults", headers={"Authorization": f"Bearer {broker.control_token}"})
        with urllib.request.urlopen(listing, timeout=10) as response:
            (listed,) = json.loads(response.read())["faults"]
        assert listed["fired"] == 2 and listed["count"] == 0
