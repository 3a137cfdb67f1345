"""MQTT output of the edge daemon (``outputs.mqtt`` in edge.yaml), paho-mqtt >= 2.

Topics (``prefix`` = ``outputs.mqtt.topic_prefix``):

``<prefix>/events``
    one JSON object per alert event, QoS 1 (at least once; a redelivery after
    a reconnect carries the MQTT DUP flag), not retained.
``<prefix>/status``
    retained ``{"status": "online", "client_id": ..., "t": <unix s>}`` after
    every (re)connect and ``{"status": "offline", "reason": "shutdown"}`` at a
    clean shutdown; the broker publishes the last will
    ``{"status": "offline", "reason": "connection lost"}`` (retained) when the
    daemon disappears without disconnecting.

Delivery: events wait in a bounded queue (``max_pending``) until the client
is connected, then at most ``max_inflight`` are handed to paho at a time;
paho re-sends those not yet acknowledged (PUBACK) after a reconnect.  An
event leaves the queue only when the broker acknowledged it.  When the queue
is full the oldest waiting event is dropped and counted (``dropped``): never
silently.  The daemon writes and fsyncs every event to its JSONL log before
it gets here, so the log stays complete even then.

The connection is made in paho's network thread (``connect_async`` +
``loop_start``) with reconnect backoff ``reconnect_min_s`` .. ``reconnect_max_s``:
a broker that is down at start-up does not stop the daemon.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from typing import Any, Optional

__all__ = ["MqttPublisher"]

log = logging.getLogger("ssbwatch.mqtt")


def _import_paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the MQTT output needs paho-mqtt >= 2: pip install ssbwatch[net] "
            "(or set outputs.mqtt.enabled: false)"
        ) from exc
    if not hasattr(mqtt, "CallbackAPIVersion"):  # pragma: no cover
        raise RuntimeError("the MQTT output needs paho-mqtt >= 2: pip install -U 'paho-mqtt>=2'")
    return mqtt


class MqttPublisher:
    """Publishes events and a retained online/offline status; see the module docstring.

    A small sender thread of its own hands events to paho; paho's callbacks
    only wake it (paho calls ``on_publish`` holding its own locks, so nothing
    here calls into paho from a callback while holding a lock of ours).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, *, topic_prefix: str = "ssbwatch",
                 client_id: str = "ssbwatch", qos: int = 1, keepalive_s: int = 30,
                 max_pending: int = 1000, max_inflight: int = 20,
                 reconnect_min_s: float = 1.0, reconnect_max_s: float = 30.0,
                 username: Optional[str] = None, password: Optional[str] = None) -> None:
        mqtt = _import_paho()
        self._mqtt = mqtt
        prefix = topic_prefix.rstrip("/")
        self.events_topic = f"{prefix}/events"
        self.status_topic = f"{prefix}/status"
        self.client_id = client_id
        self.qos = int(qos)
        self.max_inflight = int(max_inflight)
        self.max_pending = int(max_pending)
        self._pending: deque[tuple[str, bytes]] = deque()
        self._inflight: list[tuple[tuple[str, bytes], Any]] = []  # (item, MQTTMessageInfo)
        self._sending = 0  # taken from _pending, not yet in _inflight (publish() runs unlocked)
        self._cv = threading.Condition()
        self._connected = threading.Event()
        self.published = 0  # acknowledged by the broker
        self.dropped = 0  # removed from a full queue
        self.connects = 0
        self.disconnects = 0
        self.last_error: Optional[str] = None
        self._closing = False
        self._stop = False

        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if username:
            c.username_pw_set(username, password)
        c.will_set(self.status_topic, self._status("offline", reason="connection lost"), qos=1, retain=True)
        c.reconnect_delay_set(min_delay=max(1, int(reconnect_min_s)), max_delay=max(1, int(reconnect_max_s)))
        c.max_inflight_messages_set(self.max_inflight + 4)  # + status messages
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        self._client = c
        self._sender = threading.Thread(target=self._send_loop, name="ssbwatch-mqtt", daemon=True)
        self._sender.start()
        c.connect_async(host, int(port), keepalive=int(keepalive_s))
        c.loop_start()

    # -- public ----------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def pending(self) -> int:
        """Events not yet acknowledged by the broker (queued + being sent + in flight)."""
        with self._cv:
            return len(self._pending) + self._sending + len(self._inflight)

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def publish_event(self, event: dict[str, Any]) -> None:
        """Queue one event (JSON object) for ``<prefix>/events``; never blocks."""
        payload = json.dumps(event, separators=(",", ":")).encode()
        with self._cv:
            if len(self._pending) >= self.max_pending:
                self._pending.popleft()
                self.dropped += 1
                log.error("MQTT queue full (%d events): dropped the oldest event", self.max_pending)
            self._pending.append((self.events_topic, payload))
            self._cv.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Wait until every queued event is acknowledged (True) or ``timeout_s`` passed."""
        end = time.monotonic() + timeout_s
        with self._cv:
            while self._pending or self._inflight or self._sending:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.05))
            return True

    def stats(self) -> dict[str, Any]:
        with self._cv:
            return {"connected": self.connected, "published": self.published, "dropped": self.dropped,
                    "pending": len(self._pending) + self._sending + len(self._inflight), "connects": self.connects,
                    "last_error": self.last_error}

    def close(self, timeout_s: float = 1.0) -> None:
        """Send what is queued (up to ``timeout_s``), publish the retained
        ``offline`` status, disconnect and stop the threads."""
        if self._closing:
            return
        if self.connected:
            self.flush(timeout_s)
        self._closing = True
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._sender.join(2.0)
        left = self.pending
        if left:
            log.error("MQTT: %d event(s) not acknowledged at shutdown (they are in the JSONL log)", left)
        try:
            if self.connected:
                info = self._client.publish(self.status_topic, self._status("offline", reason="shutdown"),
                                            qos=1, retain=True)
                try:
                    info.wait_for_publish(timeout_s)
                except (RuntimeError, ValueError):
                    pass
            self._client.disconnect()
        finally:
            self._client.loop_stop()

    # -- internals ---------------------------------------------------------------
    def _status(self, status: str, **extra: Any) -> bytes:
        return json.dumps({"status": status, "client_id": self.client_id, "t": round(time.time(), 3),
                           **extra}).encode()

    def _send_loop(self) -> None:
        mqtt = self._mqtt
        while True:
            with self._cv:
                if self._stop:
                    return
                # reap what the broker acknowledged
                if self._inflight:
                    keep = [(item, info) for item, info in self._inflight if not info.is_published()]
                    if len(keep) != len(self._inflight):
                        self.published += len(self._inflight) - len(keep)
                        self._inflight = keep
                        self._cv.notify_all()
                item = None
                if (self._pending and self._connected.is_set()
                        and len(self._inflight) < self.max_inflight):
                    item = self._pending.popleft()
                    self._sending += 1
                else:
                    self._cv.wait(0.1)
                    continue
            topic, payload = item
            info = self._client.publish(topic, payload, qos=self.qos, retain=False)  # no lock held
            with self._cv:
                self._sending -= 1
                if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    # NO_CONN: paho keeps QoS>0 messages and sends them on reconnect
                    self._inflight.append((item, info))
                else:
                    self.last_error = mqtt.error_string(info.rc)
                    self._pending.appendleft(item)
                    self._cv.wait(0.1)

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if getattr(reason_code, "is_failure", False):
            self.last_error = str(reason_code)
            log.warning("MQTT connect refused: %s", reason_code)
            return
        self.connects += 1
        client.publish(self.status_topic, self._status("online"), qos=1, retain=True)
        self._connected.set()
        log.info("MQTT connected (%s)", self.events_topic)
        with self._cv:
            self._cv.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was:
            self.disconnects += 1
            if not self._closing:
                self.last_error = f"disconnected: {reason_code}"
                log.warning("MQTT disconnected (%s); reconnecting", reason_code)

    def _on_publish(self, client, userdata, mid, reason_code=None, properties=None) -> None:
        # called with paho's message lock held: only wake the sender
        with self._cv:
            self._cv.notify_all()
