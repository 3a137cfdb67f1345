"""Tests of detector.sources: every network test uses 127.0.0.1 only, ports
picked by the OS, and bounded loops with timeouts."""

from __future__ import annotations

import io
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from detector.sources import (
    BlockQueue,
    SourceProtocolError,
    SourcePump,
    SourceSpec,
    _bytes_to_complex64,
    open_source,
)

REPO = Path(__file__).resolve().parents[1]
RATE = 1.0e6
DEADLINE_S = 5.0


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _cf32(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == np.complex64 and a.shape == b.shape and a.tobytes() == b.tobytes()


def _read_n(src, n: int, deadline_s: float = DEADLINE_S) -> np.ndarray:
    """Read until n samples arrived (bounded)."""
    got: list[np.ndarray] = []
    total = 0
    end = time.monotonic() + deadline_s
    while total < n and time.monotonic() < end:
        blk = src.read(0.05)
        if blk is not None:
            assert blk.dtype == np.complex64 and len(blk) >= 1
            got.append(blk)
            total += len(blk)
    assert total == n, f"got {total} samples of {n}"
    return np.concatenate(got)


def _odd_chunks(data: bytes, seed: int = 1) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < len(data):
        k = int(rng.choice([1, 3, 5, 7, 13, 1001]))
        out.append(data[i:i + k])
        i += k
    return out


def _listener(port: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    s.settimeout(DEADLINE_S)
    return s


def _send_chunks(conn: socket.socket, chunks: list[bytes]) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i, c in enumerate(chunks):
        conn.sendall(c)
        if i % 8 == 0:
            time.sleep(0.0005)  # let some of them arrive as separate segments


class _Thread(threading.Thread):
    """Test server thread that re-raises its exception on join."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.exc = fn, None

    def run(self):
        try:
            self.fn()
        except BaseException as e:  # noqa: BLE001
            self.exc = e

    def join_ok(self, timeout: float = DEADLINE_S) -> None:
        self.join(timeout)
        assert not self.is_alive(), "server thread did not finish"
        if self.exc is not None:
            raise self.exc


# ---------------------------------------------------------------------------
# conversion and URI errors
# ---------------------------------------------------------------------------


def test_conversion_conventions():
    iq = np.array([0, 255, 127, 128], dtype=np.uint8)
    got = _bytes_to_complex64(iq.tobytes(), "cu8")
    np.testing.assert_allclose(got, [(0 - 127.5) / 127.5 + 1j * (255 - 127.5) / 127.5,
                                     (127 - 127.5) / 127.5 + 1j * (128 - 127.5) / 127.5], atol=1e-7)
    i16 = np.array([-32768, 32767, 16384, -1], dtype="<i2")
    got = _bytes_to_complex64(i16.tobytes(), "ci16_le")
    np.testing.assert_array_equal(got, np.array([-1 + 32767j / 32768, 0.5 - 1j / 32768], np.complex64))
    i8 = np.array([-128, 127], dtype="i1")
    np.testing.assert_array_equal(_bytes_to_complex64(i8.tobytes(), "ci8"),
                                  np.array([-1 + 127j / 128], np.complex64))
    x = _cf32(10)
    out = _bytes_to_complex64(x.tobytes(), "cf32_le")
    assert _same_bits(out, x) and out.flags.writeable


@pytest.mark.parametrize(
    "uri, kwargs, words",
    [
        ("foo://127.0.0.1:1", dict(datatype="cf32_le", sample_rate_hz=RATE), ["foo://127.0.0.1:1", "scheme"]),
        ("tcp://127.0.0.1:1", dict(sample_rate_hz=RATE), ["tcp://127.0.0.1:1", "format"]),
        ("udp://127.0.0.1:1", dict(datatype="ci16_le"), ["udp://127.0.0.1:1", "sample rate"]),
        ("tcp://127.0.0.1", dict(datatype="ci16_le", sample_rate_hz=RATE), ["port"]),
        ("tcp:127.0.0.1:5", dict(datatype="ci16_le", sample_rate_hz=RATE), ["tcp://"]),
        ("-", dict(sample_rate_hz=RATE), ["-: raw", "format"]),
        ("tcp://127.0.0.1:1", dict(datatype="cf99", sample_rate_hz=RATE), ["cf99"]),
        ("rtltcp://127.0.0.1:1", dict(datatype="ci16_le", sample_rate_hz=RATE), ["cu8"]),
        ("zmq+pull://127.0.0.1:1", dict(), ["sample rate"]),
        ("tcp://127.0.0.1:1", dict(datatype="ci16_le", sample_rate_hz=RATE, bogus=1), ["bogus"]),
    ],
)
def test_uri_errors_name_uri_and_missing(uri, kwargs, words):
    with pytest.raises(ValueError) as ei:
        open_source(uri, **kwargs)
    for w in words:
        assert w in str(ei.value)


def test_raw_file_needs_format_and_rate(tmp_path):
    p = tmp_path / "x.raw"
    p.write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match="format.*sample rate"):
        open_source(str(p))
    with pytest.raises(ValueError, match="sample rate"):
        open_source(f"file:{p}", datatype="ci16_le")


# ---------------------------------------------------------------------------
# TCP
# ---------------------------------------------------------------------------


def test_tcp_client_odd_chunks_bit_exact():
    x = _cf32(20000, seed=2)
    lsock = _listener()
    port = lsock.getsockname()[1]

    def serve():
        conn, _ = lsock.accept()
        with conn:
            _send_chunks(conn, _odd_chunks(x.tobytes()))
            done.wait(DEADLINE_S)

    done = threading.Event()
    srv = _Thread(serve)
    srv.start()
    src = open_source(f"tcp://127.0.0.1:{port}", datatype="cf32_le", sample_rate_hz=RATE,
                      block_samples=4096)
    try:
        got = _read_n(src, len(x))
        assert _same_bits(got, x)
        assert src.stats.samples_in == len(x)
        assert src.stats.bytes_in == x.nbytes
        assert src.stats.partial_bytes_pending == 0
        assert src.stats.reconnects == 0 and src.stats.connections == 1
    finally:
        done.set()
        src.close()
        srv.join_ok()
        lsock.close()


def test_tcp_client_reconnects_without_misalignment():
    a, b = _cf32(3000, seed=3), _cf32(2000, seed=4)
    lsock = _listener()
    port = lsock.getsockname()[1]
    done = threading.Event()

    def serve():
        conn, _ = lsock.accept()
        with conn:
            _send_chunks(conn, _odd_chunks(a.tobytes() + b"\x01\x02\x03"))  # + partial sample
        lsock.close()
        time.sleep(0.3)  # refused meanwhile: the client backs off and retries
        l2 = _listener(port)
        with l2:
            conn, _ = l2.accept()
            with conn:
                _send_chunks(conn, _odd_chunks(b.tobytes(), seed=5))
                done.wait(DEADLINE_S)

    srv = _Thread(serve)
    srv.start()
    src = open_source(f"tcp://127.0.0.1:{port}", datatype="cf32_le", sample_rate_hz=RATE,
                      backoff_initial_s=0.02, backoff_max_s=0.1)
    try:
        got = _read_n(src, len(a) + len(b))
        assert _same_bits(got, np.concatenate([a, b]))
        assert src.stats.reconnects == 1
        assert src.stats.connections == 2
        assert src.stats.connect_failures >= 1
        assert src.stats.dropped_bytes == 3
        assert src.stats.errors  # the drop was recorded
    finally:
        done.set()
        src.close()
        srv.join_ok()


def test_tcp_client_backoff_is_bounded_and_read_times_out():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: refused
    src = open_source(f"tcp://127.0.0.1:{port}", datatype="ci16_le", sample_rate_hz=RATE,
                      backoff_initial_s=0.01, backoff_max_s=0.04)
    try:
        t0 = time.monotonic()
        assert src.read(0.3) is None
        assert time.monotonic() - t0 < 1.0
        assert 2 <= src.stats.connect_failures <= 30
        assert src._backoff == pytest.approx(0.04)
        assert len(src.stats.errors) <= 20
    finally:
        src.close()
    with pytest.raises(ValueError):
        src.read(0.01)


def test_tcp_listen_accepts_one_sender_at_a_time():
    x1, x2 = _cf32(1500, seed=6), _cf32(900, seed=7)
    src = open_source("tcp-listen://127.0.0.1:0", datatype="cf32_le", sample_rate_hz=RATE)
    assert src.address[0] == "127.0.0.1"
    port = src.address[1]
    try:
        assert src.read(0.05) is None  # nobody connected yet
        s1 = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
        s2 = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
        s2.sendall(x2.tobytes())  # waits in the backlog until s1 is done
        _send_chunks(s1, _odd_chunks(x1.tobytes(), seed=8))
        s1.close()
        s2.close()
        got = _read_n(src, len(x1) + len(x2))
        assert _same_bits(got, np.concatenate([x1, x2]))
        assert src.stats.connections == 2 and src.stats.reconnects == 1
    finally:
        src.close()


# ---------------------------------------------------------------------------
# UDP
# ---------------------------------------------------------------------------


def test_udp_malformed_datagram_counted_and_later_data_aligned():
    x = _cf32(600, seed=9)
    src = open_source("udp://127.0.0.1:0", datatype="cf32_le", sample_rate_hz=RATE)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        addr = src.address
        assert addr[0] == "127.0.0.1"
        d1, d2, d3 = x[:200].tobytes(), x[200:400].tobytes(), x[400:].tobytes()
        tx.sendto(d1, addr)
        tx.sendto(d2 + b"\xAA\xBB\xCC", addr)  # not a whole number of samples
        tx.sendto(b"\x01", addr)  # no whole sample at all
        tx.sendto(d3, addr)
        got = _read_n(src, len(x))
        assert _same_bits(got, x)
        assert src.stats.malformed_messages == 2
        assert src.stats.dropped_bytes == 4
        assert src.stats.bytes_in == len(d1) + len(d2) + 3 + 1 + len(d3)
    finally:
        tx.close()
        src.close()


# ---------------------------------------------------------------------------
# rtl_tcp
# ---------------------------------------------------------------------------


def _rtl_server(lsock, payload: bytes, header: bytes, n_cmd_bytes: int, received: list, done,
                client_may_hang_up: bool = False):
    def serve():
        conn, _ = lsock.accept()
        with conn:
            conn.settimeout(DEADLINE_S)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                conn.sendall(header[:7])  # the header split across segments
                time.sleep(0.01)
                conn.sendall(header[7:] + payload[:3])
                _send_chunks(conn, _odd_chunks(payload[3:], seed=10))
            except (BrokenPipeError, ConnectionResetError):
                if not client_may_hang_up:
                    raise
            buf = b""
            while len(buf) < n_cmd_bytes:
                chunk = conn.recv(64)
                if not chunk:
                    break
                buf += chunk
            received.append(buf)
            done.wait(DEADLINE_S)

    return _Thread(serve)


def test_rtltcp_header_cu8_and_commands():
    rng = np.random.default_rng(11)
    payload = rng.integers(0, 256, 2 * 5000, dtype=np.uint8).tobytes()
    header = b"RTL0" + struct.pack(">II", 5, 29)
    lsock = _listener()
    received: list[bytes] = []
    done = threading.Event()
    srv = _rtl_server(lsock, payload, header, 20, received, done)
    srv.start()
    src = open_source(f"rtltcp://127.0.0.1:{lsock.getsockname()[1]}", sample_rate_hz=2.048e6)
    try:
        got = _read_n(src, 5000)
        u = np.frombuffer(payload, np.uint8).astype(np.float64)
        want = ((u[0::2] - 127.5) / 127.5) + 1j * ((u[1::2] - 127.5) / 127.5)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)
        assert (src.tuner_type, src.gain_count) == (5, 29)
        assert src.datatype == "cu8"
        assert src.set_center_freq(1_000_000_000) is True
        assert src.set_gain_db(33.8) is True
        done.set()
        srv.join_ok()
        cmds = received[0]
        assert cmds[:5] == b"\x02" + (2_048_000).to_bytes(4, "big")  # tune=True: rate on connect
        assert cmds[5:10] == b"\x01" + (1_000_000_000).to_bytes(4, "big")
        assert cmds[10:15] == b"\x03\x00\x00\x00\x01"  # manual gain mode
        assert cmds[15:20] == b"\x04" + (338).to_bytes(4, "big")
        assert src.center_freq_hz == 1e9
    finally:
        done.set()
        src.close()
        lsock.close()


def test_rtltcp_wrong_magic_is_a_clear_error():
    lsock = _listener()
    done = threading.Event()
    srv = _rtl_server(lsock, b"\x80" * 64, b"HTTP" + b"\0" * 8, 0, [], done,
                      client_may_hang_up=True)
    srv.start()
    src = open_source(f"rtltcp://127.0.0.1:{lsock.getsockname()[1]}", sample_rate_hz=2.048e6,
                      tune=False)
    try:
        end = time.monotonic() + DEADLINE_S
        with pytest.raises(SourceProtocolError, match="RTL0") as ei:
            while time.monotonic() < end:
                src.read(0.05)
        assert "HTTP" in str(ei.value)
        assert isinstance(ei.value, ValueError)
    finally:
        done.set()
        src.close()
        srv.join_ok()
        lsock.close()


# ---------------------------------------------------------------------------
# ZMQ
# ---------------------------------------------------------------------------


def test_zmq_pull_exact_with_malformed_message():
    zmq = pytest.importorskip("zmq")
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.setsockopt(zmq.SNDTIMEO, int(DEADLINE_S * 1000))
    port = push.bind_to_random_port("tcp://127.0.0.1")
    x = _cf32(3000, seed=12)
    src = open_source(f"zmq+pull://127.0.0.1:{port}", sample_rate_hz=RATE, block_samples=1000)
    try:
        push.send(x[:1000].tobytes())
        push.send(x[1000:2000].tobytes() + b"\x00" * 5)  # malformed: 5 stray bytes
        push.send(x[2000:].tobytes())
        got = _read_n(src, len(x))
        assert _same_bits(got, x)
        assert src.stats.malformed_messages == 1 and src.stats.dropped_bytes == 5
    finally:
        src.close()
        push.close(0)
        ctx.term()


def test_zmq_sub_receives_whole_messages():
    zmq = pytest.importorskip("zmq")
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    p = _cf32(256, seed=13)
    src = open_source(f"zmq+sub://127.0.0.1:{port}", sample_rate_hz=RATE)
    try:
        got: list[np.ndarray] = []
        total = 0
        end = time.monotonic() + DEADLINE_S
        while total < 4 * len(p) and time.monotonic() < end:
            pub.send(p.tobytes())  # SUB drops until joined: keep publishing
            blk = src.read(0.01)
            if blk is not None:
                got.append(blk)
                total += len(blk)
        assert total >= 4 * len(p)
        allx = np.concatenate(got)
        assert len(allx) % len(p) == 0
        assert _same_bits(allx, np.tile(p, len(allx) // len(p)))
    finally:
        src.close()
        pub.close(0)
        ctx.term()


def test_zmq_missing_pyzmq_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "zmq", None)  # makes `import zmq` fail
    with pytest.raises(ImportError, match=r"pip install ssbwatch\[net\]"):
        open_source("zmq+sub://127.0.0.1:5555", sample_rate_hz=RATE)


# ---------------------------------------------------------------------------
# files and stdin
# ---------------------------------------------------------------------------


def test_raw_file_reads_to_eof_and_counts_trailing_partial(tmp_path):
    rng = np.random.default_rng(14)
    ints = rng.integers(-32768, 32768, 2 * 1234, dtype=np.int64).astype("<i2")
    p = tmp_path / "cap.ci16"
    ints.tofile(p)
    with open(p, "ab") as f:
        f.write(b"\x07")  # half a component: an incomplete trailing sample
    src = open_source(f"file:{p}", datatype="ci16_le", sample_rate_hz=RATE, block_samples=100)
    got = []
    with pytest.raises(EOFError):
        for _ in range(1000):
            blk = src.read(0.1)
            assert blk is not None and len(blk) <= 100
            got.append(blk)
    got = np.concatenate(got)
    want = (ints[0::2] / 32768.0 + 1j * ints[1::2] / 32768.0).astype(np.complex64)
    np.testing.assert_array_equal(got, want)
    assert src.stats.dropped_bytes == 1
    with pytest.raises(EOFError):  # stays at EOF
        src.read(0.1)
    src.close()


def test_file_follow_growing_file(tmp_path):
    x = _cf32(5000, seed=15)
    raw = x.tobytes()
    p = tmp_path / "grow.cf32"
    cuts = [0, 13, 4000, 4003, 17001, 30000, len(raw)]
    p.write_bytes(raw[: cuts[1]])
    src = open_source(str(p), datatype="cf32_le", sample_rate_hz=RATE, follow=True,
                      poll_interval_s=0.005, block_samples=1000)
    try:
        got: list[np.ndarray] = []
        blk = src.read(0.05)
        assert blk is not None and len(blk) == 1  # 13 bytes = 1 sample + 5 pending
        got.append(blk)
        assert src.stats.partial_bytes_pending == 5
        for lo, hi in zip(cuts[1:-1], cuts[2:]):
            with open(p, "ab") as f:
                f.write(raw[lo:hi])
            n_expected = hi // 8 - sum(len(g) for g in got)
            if n_expected:
                got.append(_read_n(src, n_expected))
            else:  # only bytes of an incomplete sample: kept, nothing returned
                assert src.read(0.02) is None
            assert src.stats.partial_bytes_pending == hi % 8
        assert _same_bits(np.concatenate(got), x)
        t0 = time.monotonic()
        assert src.read(0.05) is None  # following: no EOF, just nothing new
        assert time.monotonic() - t0 < 1.0
    finally:
        src.close()


def test_sigmf_file_through_signals_iq(tmp_path):
    pytest.importorskip("signals.iq")
    import json

    ints = np.arange(-200, 200, dtype="<i2")
    base = tmp_path / "rec"
    ints.tofile(str(base) + ".sigmf-data")
    meta = {"global": {"core:datatype": "ci16_le", "core:sample_rate": 7.68e6,
                       "core:version": "1.0.0"},
            "captures": [{"core:sample_start": 0, "core:frequency": 3.5e9}],
            "annotations": []}
    Path(str(base) + ".sigmf-meta").write_text(json.dumps(meta))
    src = open_source(str(base) + ".sigmf-meta", block_samples=64)
    assert src.sample_rate_hz == 7.68e6 and src.center_freq_hz == 3.5e9
    got = []
    with pytest.raises(EOFError):
        for _ in range(100):
            got.append(src.read(0.1))
    want = (ints[0::2] / 32768.0 + 1j * ints[1::2] / 32768.0).astype(np.complex64)
    np.testing.assert_allclose(np.concatenate(got), want, atol=1e-7)
    src.close()

    # follow mode on the same recording: tails the .sigmf-data file
    src = open_source(f"file:{base}", follow=True, poll_interval_s=0.005)
    try:
        assert src.sample_rate_hz == 7.68e6 and src.datatype == "ci16_le"
        got = _read_n(src, len(want))
        more = np.array([1000, -1000, 7], dtype="<i2")
        with open(str(base) + ".sigmf-data", "ab") as f:
            f.write(more.tobytes())  # one whole sample and half of the next
        extra = _read_n(src, 1)
        np.testing.assert_allclose(extra, [(1000 - 1000j) / 32768], atol=1e-7)
        assert src.stats.partial_bytes_pending == 2
    finally:
        src.close()

    # the same recording packed as a SigMF archive reads the same (follow mode is refused)
    import tarfile

    with tarfile.open(tmp_path / "rec.sigmf", "w") as tar:
        for suffix in ("sigmf-meta", "sigmf-data"):
            tar.add(f"{base}.{suffix}", arcname=f"rec/rec.{suffix}")
    src = open_source(str(tmp_path / "rec.sigmf"), block_samples=64)
    assert src.sample_rate_hz == 7.68e6 and src.center_freq_hz == 3.5e9
    got = []
    with pytest.raises(EOFError):
        for _ in range(100):
            got.append(src.read(0.1))
    np.testing.assert_allclose(np.concatenate(got)[: len(want) + 1], np.append(want, extra), atol=1e-7)
    src.close()
    with pytest.raises(ValueError, match="follow=True is not possible for a .sigmf archive"):
        open_source(str(tmp_path / "rec.sigmf"), follow=True)


def test_stdin_injected_fileobj():
    x = _cf32(777, seed=16)
    src = open_source("-", fileobj=io.BytesIO(x.tobytes() + b"\x01\x02"), datatype="cf32_le",
                      sample_rate_hz=RATE, block_samples=100)
    got = []
    with pytest.raises(EOFError):
        for _ in range(100):
            got.append(src.read(0.1))
    assert _same_bits(np.concatenate(got), x)
    assert src.stats.dropped_bytes == 2


def test_stdin_pipe_odd_chunks():
    x = _cf32(3000, seed=17)
    r, w = os.pipe()
    rf = os.fdopen(r, "rb")

    def write():
        with os.fdopen(w, "wb", buffering=0) as wf:
            for c in _odd_chunks(x.tobytes(), seed=18):
                wf.write(c)

    wr = _Thread(write)
    wr.start()
    src = open_source("-", fileobj=rf, datatype="cf32_le", sample_rate_hz=RATE)
    try:
        got = _read_n(src, len(x))
        assert _same_bits(got, x)
        wr.join_ok()
        with pytest.raises(EOFError):
            for _ in range(100):
                assert src.read(0.1) is None
    finally:
        src.close()
        rf.close()


def test_stdin_real_subprocess():
    x = _cf32(1000, seed=19)
    code = (
        "import sys, numpy as np\n"
        "from detector.sources import open_source\n"
        "src = open_source('-', datatype='cf32_le', sample_rate_hz=1e6)\n"
        "out = []\n"
        "try:\n"
        "    while True:\n"
        "        b = src.read(1.0)\n"
        "        if b is not None: out.append(b)\n"
        "except EOFError:\n"
        "    pass\n"
        "sys.stdout.buffer.write(np.concatenate(out).tobytes())\n"
    )
    res = subprocess.run([sys.executable, "-c", code], input=x.tobytes(), capture_output=True,
                         cwd=REPO, timeout=30)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout == x.tobytes()


# ---------------------------------------------------------------------------
# BlockQueue and SourcePump
# ---------------------------------------------------------------------------


def test_block_queue_indices_show_gaps():
    q = BlockQueue(max_samples=250)
    blocks = [np.full(100, i, np.complex64) for i in range(5)]
    assert q.put(blocks[0]) and q.put(blocks[1])
    assert q.put(blocks[2]) is False  # 300 > 250: dropped whole
    b, idx = q.get(0.1)
    assert idx == 0 and b is blocks[0]
    assert q.put(blocks[3]) is True
    assert q.put(np.zeros(0, np.complex64)) is True  # empty: ignored
    assert q.get(0.1)[1] == 100
    b, idx = q.get(0.1)
    assert idx == 300 and b[0] == 3  # jump 200 -> 300 reveals the dropped block
    assert q.get(0.01) is None
    assert q.put(np.zeros(251, np.complex64)) is False  # larger than the queue
    st = q.stats
    assert (st.samples_in, st.samples_out, st.samples_dropped, st.dropped_blocks) == (651, 300, 351, 2)
    assert st.max_fill_samples == 200 and st.fill_samples == 0
    with pytest.raises(ValueError):
        BlockQueue(0)


def test_block_queue_slow_consumer_accounting():
    q = BlockQueue(max_samples=2000)
    rng = np.random.default_rng(20)
    sizes = rng.integers(50, 400, 600)
    got_samples = 0
    expected_next = 0
    gaps = 0

    def produce():
        for s in sizes:
            q.put(np.zeros(int(s), np.complex64))
            time.sleep(0.0002)
        q.close()

    prod = _Thread(produce)
    prod.start()
    end = time.monotonic() + DEADLINE_S
    while not q.drained and time.monotonic() < end:
        item = q.get(0.05)
        if item is None:
            continue
        blk, idx = item
        assert idx >= expected_next
        gaps += idx > expected_next
        expected_next = idx + len(blk)
        got_samples += len(blk)
        time.sleep(0.002)  # slower than the producer
    prod.join_ok()
    st = q.stats
    assert q.drained
    assert st.samples_in == int(sizes.sum())
    assert st.samples_in == got_samples + st.samples_dropped  # exact
    assert st.dropped_blocks > 0 and gaps > 0
    assert st.max_fill_samples <= 2000
    assert q.put(np.zeros(10, np.complex64)) is False  # closed: dropped, counted
    assert q.stats.samples_dropped == st.samples_dropped + 10


def test_block_queue_wait_fill():
    """wait_fill returns once that many samples are queued (a producer filling it
    block by block), False after its timeout when they are not, and at once on a
    closed queue."""
    q = BlockQueue(max_samples=10_000)

    def produce():
        for _ in range(20):
            q.put(np.zeros(100, np.complex64))
            time.sleep(0.002)

    prod = _Thread(produce)
    prod.start()
    assert q.wait_fill(1000, DEADLINE_S)
    assert q.stats.fill_samples >= 1000
    prod.join_ok()
    assert q.stats.fill_samples == 2000
    t0 = time.monotonic()
    assert not q.wait_fill(5000, 0.05)
    assert time.monotonic() - t0 >= 0.04
    q.close()
    assert not q.wait_fill(5000, DEADLINE_S)  # closed: no more will come


def test_block_queue_wait_room():
    """wait_room returns once a consumer's gets bring the fill down to the level asked
    for (it is woken by them, not polling), False after its timeout while nothing is
    taken, and at once on a closed queue."""
    q = BlockQueue(max_samples=10_000)
    for _ in range(20):
        q.put(np.zeros(100, np.complex64))
    assert not q.wait_room(1000, 0.02)  # nobody takes: the fill stays at 2000

    def consume():
        for _ in range(15):
            time.sleep(0.002)
            assert q.get(DEADLINE_S) is not None

    cons = _Thread(consume)
    cons.start()
    assert q.wait_room(1000, DEADLINE_S)
    assert q.stats.fill_samples <= 1000
    cons.join_ok()
    assert q.stats.fill_samples == 500
    q.close()
    assert not q.wait_room(100, DEADLINE_S)  # closed: returns at once, the fill still 500


def test_source_pump_runs_to_eof_and_joins():
    x = _cf32(10000, seed=21)
    spec = SourceSpec("-", datatype="cf32_le", sample_rate_hz=RATE, block_samples=1000,
                      options={"fileobj": io.BytesIO(x.tobytes())})
    src = spec.open()
    q = BlockQueue(max_samples=1 << 20)
    pump = SourcePump(src, q, read_timeout_s=0.05).start()
    got = []
    end = time.monotonic() + DEADLINE_S
    while not q.drained and time.monotonic() < end:
        item = q.get(0.05)
        if item is not None:
            got.append(item)
    pump.close()
    assert not pump.running and pump.eof and pump.error is None
    assert [i for _, i in got] == list(range(0, 10000, 1000))
    assert _same_bits(np.concatenate([b for b, _ in got]), x)


def test_sources_leave_no_threads():
    before = set(threading.enumerate())
    srcs = [
        open_source("tcp-listen://127.0.0.1:0", datatype="cu8", sample_rate_hz=RATE),
        open_source("udp://127.0.0.1:0", datatype="cu8", sample_rate_hz=RATE),
        open_source("tcp://127.0.0.1:9", datatype="cu8", sample_rate_hz=RATE),
    ]
    for s in srcs:
        assert s.read(0.01) is None
        s.close()
        s.close()  # idempotent
    assert set(threading.enumerate()) <= before
