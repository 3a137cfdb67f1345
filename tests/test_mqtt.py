"""MQTT output against a real mosquitto broker on a free loopback port."""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (pip install ssbwatch[net])")
import paho.mqtt.client as mqtt  # noqa: E402

from detector.mqtt import MqttPublisher  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)), None)
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto broker not installed (apt-get install mosquitto)")
GUARD_S = 60.0  # hang guard only


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, tmp_path, port=None):
        self.port = port or _free_port()
        conf = tmp_path / f"mosquitto-{self.port}.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        end = time.monotonic() + GUARD_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError("mosquitto did not start")
                time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    yield b
    b.stop()


class Sub:
    """A subscriber that collects (topic, payload dict, retain flag)."""

    def __init__(self, port, topic):
        self.msgs = []
        self.cv = threading.Condition()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{time.monotonic_ns()}")
        c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.c = c

    def _on_message(self, client, userdata, msg):
        with self.cv:
            self.msgs.append((msg.topic, json.loads(msg.payload), bool(msg.retain)))
            self.cv.notify_all()

    def wait_for(self, pred, what):
        end = time.monotonic() + GUARD_S
        with self.cv:
            while True:
                hit = [m for m in self.msgs if pred(m)]
                if hit:
                    return hit
                if time.monotonic() > end:
                    raise AssertionError(f"no {what}; got {self.msgs}")
                self.cv.wait(0.1)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def _status(s, reason=None):
    return lambda m: m[0].endswith("/status") and m[1]["status"] == s and (reason is None or m[1].get("reason") == reason)


def test_event_published_qos1_and_retained_status(broker):
    sub = Sub(broker.port, "site1/#")
    pub = MqttPublisher("127.0.0.1", broker.port, topic_prefix="site1", client_id="ssbwatch-t1")
    try:
        assert pub.wait_connected(GUARD_S)
        sub.wait_for(_status("online"), "online status")
        pub.publish_event({"type": "event", "kind": "JAMMING_STARTED", "pci": 182, "t_s": 1.5})
        got = sub.wait_for(lambda m: m[0] == "site1/events", "event")
        assert got[0][1]["kind"] == "JAMMING_STARTED" and got[0][1]["pci"] == 182
        assert pub.flush(GUARD_S) and pub.published == 1 and pub.dropped == 0
    finally:
        pub.close()
    sub.wait_for(_status("offline", "shutdown"), "offline status at shutdown")
    sub.close()
    late = Sub(broker.port, "site1/status")  # retained: a late subscriber still learns it
    got = late.wait_for(_status("offline", "shutdown"), "retained offline status")
    assert got[0][2] is True
    late.close()


def test_last_will_when_the_daemon_dies(broker, tmp_path):
    script = (
        "import sys, time\n"
        "from detector.mqtt import MqttPublisher\n"
        f"p = MqttPublisher('127.0.0.1', {broker.port}, topic_prefix='site2', client_id='ssbwatch-t2')\n"
        "assert p.wait_connected(60)\n"
        "print('up', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"up"
        sub = Sub(broker.port, "site2/status")
        sub.wait_for(_status("online"), "retained online status")
        proc.kill()  # no DISCONNECT: the broker publishes the will
        proc.wait(GUARD_S)
        got = sub.wait_for(_status("offline", "connection lost"), "last will")
        assert got[0][1]["client_id"] == "ssbwatch-t2"
        sub.close()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_events_wait_for_the_broker_and_overflow_is_counted(tmp_path):
    port = _free_port()
    pub = MqttPublisher("127.0.0.1", port, topic_prefix="site3", client_id="ssbwatch-t3",
                        max_pending=3, reconnect_min_s=1, reconnect_max_s=1)
    small = MqttPublisher("127.0.0.1", port, topic_prefix="site4", client_id="ssbwatch-t4", max_pending=2)
    try:
        for i in range(3):
            pub.publish_event({"kind": "JAMMING_STARTED", "seq": i})
            small.publish_event({"kind": "JAMMING_STARTED", "seq": i})
        assert not pub.connected and pub.pending == 3 and pub.dropped == 0
        assert small.pending == 2 and small.dropped == 1  # counted, never silent
        small.close(timeout_s=0.1)
        b = Broker(tmp_path, port)  # the broker comes up late
        try:
            assert pub.wait_connected(GUARD_S)
            assert pub.flush(GUARD_S)  # every queued event acknowledged (PUBACK) by the broker
            assert pub.published == 3 and pub.dropped == 0 and pub.pending == 0
        finally:
            pub.close()
            b.stop()
    finally:
        pub.close()
        small.close(timeout_s=0.1)


class _JammedPipeline:
    """Every pushed block yields one jammed SSB record of PCI 77."""

    def push(self, block, start):
        return [{"file": "x", "t": start / 7.68e6, "sample": int(start), "pci": 77, "ssb_index": 0,
                 "jammed": True, "score": 0.95, "stage": 1, "valid": True, "snr_est_db": 3.0,
                 "profile_peak_db": 2.0, "sym_spread_db": 1.0}]

    def flush(self):
        return []


def test_daemon_event_reaches_mqtt_after_the_jsonl(broker, tmp_path):
    import numpy as np

    from detector.daemon import Daemon, edge_config_from_dict

    out = tmp_path / "o.jsonl"
    cfg = edge_config_from_dict({
        "source": {"uri": "udp://127.0.0.1:0", "format": "cf32_le", "sample_rate_hz": 7.68e6},
        "detector": {"model": "classical"},
        "outputs": {"jsonl": {"path": str(out)}, "stats_interval_s": 0,
                    "mqtt": {"enabled": True, "port": broker.port, "topic_prefix": "edge9", "client_id": "ssbwatch-t9"}},
    })
    sub = Sub(broker.port, "edge9/#")
    d = Daemon(cfg, pipeline_factory=lambda *a: _JammedPipeline())
    th = threading.Thread(target=d.run, daemon=True)
    th.start()
    try:
        assert d.started.wait(GUARD_S) and d.mqtt.wait_connected(GUARD_S)
        sub.wait_for(_status("online"), "online status")
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(3):  # k=3 of n=5 jammed SSBs -> JAMMING_STARTED
            tx.sendto(np.zeros(2000, np.float32).tobytes(), d.stream.source.address)
            sub_t0 = time.monotonic()
            while d.snapshot()["samples_processed"] < 1000 * (_ + 1):
                assert time.monotonic() - sub_t0 < GUARD_S
                time.sleep(0.01)
        tx.close()
        got = sub.wait_for(lambda m: m[0] == "edge9/events", "daemon event")
        assert got[0][1]["kind"] == "JAMMING_STARTED" and got[0][1]["pci"] == 77
        # durably logged too (written + fsync'd before the publish)
        logged = [json.loads(l) for l in out.read_text().splitlines() if '"event"' in l]
        assert logged and logged[0]["kind"] == "JAMMING_STARTED" and logged[0]["sample"] == got[0][1]["sample"]
    finally:
        d.request_stop()
        th.join(GUARD_S)
    sub.wait_for(_status("offline", "shutdown"), "offline at daemon shutdown")
    sub.close()
