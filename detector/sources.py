"""IQ sources addressed by URI, and the bounded block buffer of the pipeline.

``open_source(uri, ...)`` returns an :class:`IQSource`; every source has the
same small interface::

    src = open_source("tcp://127.0.0.1:5555", datatype="ci16_le",
                      sample_rate_hz=30.72e6, center_freq_hz=3.5e9)
    while True:
        block = src.read(timeout_s=0.5)   # complex64, len >= 1, or None on timeout
        ...
    src.close()

``read`` never blocks longer than about ``timeout_s`` (connection attempts
are bounded by ``connect_timeout_s`` as well); it returns ``None`` when no
sample arrived in time and raises :class:`EOFError` at the end of a finite
source (a file without ``follow``, stdin at EOF).  A source is meant to be
read by one thread; :meth:`RtlTcpSource.set_center_freq` and friends may be
called from another thread.  No source starts threads of its own, so
``close()`` leaves nothing running (:class:`SourcePump` is the one class here
that owns a thread, and its ``close()`` joins it).

URIs
----
``file:PATH``, ``file://PATH`` or a bare ``PATH``
    A SigMF recording (``.sigmf-meta`` / ``.sigmf-data`` / ``.sigmf``, or a
    base name with a ``.sigmf-meta`` beside it; read through ``signals.iq``)
    or a raw interleaved I/Q file (needs ``datatype`` and ``sample_rate_hz``).
    ``follow=True`` follows a growing file like ``tail -f``: new bytes are
    polled for every ``poll_interval_s`` (default 0.05 s), nothing is ever
    re-read, and the bytes of a sample that is only partly written are kept
    until the rest arrives.  If the file shrinks (truncated / rewritten) the
    event is recorded in ``stats.errors`` and reading restarts at offset 0,
    as GNU ``tail -f`` does.
``-``
    stdin, raw bytes in ``datatype``.  ``fileobj=`` substitutes any binary
    file object (tests, or a pipe opened by the caller).
``tcp://host:port``
    TCP client.  When the connection is refused or drops it reconnects with
    exponential backoff (``backoff_initial_s`` 0.1 s, doubling up to
    ``backoff_max_s`` 5 s; reset after a successful connect) and counts
    ``stats.reconnects``.  A partial sample left when a connection drops is
    discarded (``stats.dropped_bytes``): each connection is assumed to start
    on a sample boundary, so later data is never misaligned.
``tcp-listen://host:port``
    TCP server that accepts one sender at a time; the next sender (waiting
    in the listen backlog) is accepted after the previous one disconnects.
``udp://host:port``
    Binds and receives datagrams of raw samples.  A datagram whose length is
    not a multiple of the sample size counts as malformed; its trailing
    partial sample is dropped (``stats.dropped_bytes``).
``rtltcp://host:port``
    rtl_tcp client (cu8 only): validates the 12-byte ``RTL0`` header and
    exposes ``tuner_type`` / ``gain_count``; ``set_center_freq``,
    ``set_sample_rate``, ``set_gain_db`` send rtl_tcp commands.  Settings are
    remembered and re-sent after every (re)connect; with ``tune=True`` (the
    default) the ``sample_rate_hz`` / ``center_freq_hz`` given to
    ``open_source`` are sent on connect too.
``zmq+sub://host:port`` / ``zmq+pull://host:port``
    GNU Radio ZMQ PUB / PUSH sink (connects; ``bind=True`` binds instead).
    Every message is raw cf32_le samples; disable ``pass_tags`` on the sink,
    the tag header is not parsed.  **ZMQ SUB drops messages silently** (slow
    joiner at connect, and whenever the subscriber's high-water mark is
    reached); nothing at this layer can see those gaps.  Use ``zmq+pull``
    when every sample matters.  Needs pyzmq (``pip install ssbwatch[net]``).

Listeners (``tcp-listen``, ``udp``, ``zmq`` with ``bind=True``) bind exactly
the host given: use ``127.0.0.1`` for loopback only, ``0.0.0.0`` for all
interfaces.  Port 0 picks a free port; ``source.address`` tells which.

Sample formats (interleaved I, Q): every complex SigMF datatype
(``signals.iq``): ``cf32_le`` (float32), ``ci16_le`` (int16 / 32768), ``ci8``
(int8 / 128), ``cu8`` ((x - 127.5) / 127.5), and the 64-bit float, 32-bit
integer, unsigned 16/32-bit and big-endian ones.
"""

from __future__ import annotations

import abc
import collections
import os
import select
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import numpy as np

from signals import iq as iqio

__all__ = [
    "BlockQueue",
    "FileSource",
    "IQSource",
    "QueueStats",
    "RtlTcpSource",
    "SourceProtocolError",
    "SourcePump",
    "SourceSpec",
    "SourceStats",
    "StdinSource",
    "TcpClientSource",
    "TcpListenSource",
    "UdpSource",
    "ZmqSource",
    "normalize_datatype",
    "open_source",
]

# ---------------------------------------------------------------------------
# Sample formats
# ---------------------------------------------------------------------------

#: datatype -> (numpy dtype of one I or Q component, bytes per complex sample): every
#: complex SigMF datatype (signals.iq holds the one table)
_FORMATS: dict[str, tuple[str, int]] = {
    d: (iqio.component_dtype(d).str, iqio.bytes_per_sample(d)) for d in iqio.SUPPORTED_DATATYPES
}

_MAX_ERRORS = 20


def normalize_datatype(datatype: str) -> str:
    """Canonical SigMF name of ``datatype`` (``ValueError`` if unknown): any case,
    ``cf32``, ``fc32``, ``sc16``, ``sc8``, ``ci8_le`` too (``signals.iq.normalize_datatype``)."""
    try:
        return iqio.normalize_datatype(datatype)
    except iqio.IQUnsupportedDatatypeError:
        raise ValueError(
            f"unknown sample format {datatype!r}; expected one of {', '.join(iqio.SUPPORTED_DATATYPES)}"
        ) from None


def _bytes_per_sample(datatype: str) -> int:
    return _FORMATS[datatype][1]


def _bytes_to_complex64(buf: bytes | bytearray | memoryview, datatype: str) -> np.ndarray:
    """Whole samples of interleaved I/Q bytes -> writable native complex64
    (``signals.iq.to_complex64``: a fresh array, full scale 1.0)."""
    return iqio.to_complex64(np.frombuffer(buf, dtype=_FORMATS[datatype][0]), datatype)


class SourceProtocolError(ValueError):
    """The peer does not speak the expected protocol (e.g. wrong rtl_tcp magic)."""


# ---------------------------------------------------------------------------
# Common interface
# ---------------------------------------------------------------------------


@dataclass
class SourceStats:
    """Counters of one source (plain ints: safe to read from another thread)."""

    samples_in: int = 0
    bytes_in: int = 0
    partial_bytes_pending: int = 0
    reconnects: int = 0
    malformed_messages: int = 0
    errors: list[str] = field(default_factory=list)
    #: bytes thrown away: trailing partial samples of malformed datagrams /
    #: messages, a partial sample left when a connection dropped or at EOF.
    dropped_bytes: int = 0
    #: successful connections (client connects / accepted senders).
    connections: int = 0
    #: failed connection attempts (refused, unreachable, timed out).
    connect_failures: int = 0
    #: capture segments of a SigMF recording that do not continue the stream before them
    #: (retuned to another ``core:frequency``, or samples lost: ``signals.iq.capture_parts``).
    discontinuities: int = 0

    def note_error(self, message: str) -> None:
        """Record ``message``, keeping only the last 20."""
        self.errors.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}")
        if len(self.errors) > _MAX_ERRORS:
            del self.errors[: len(self.errors) - _MAX_ERRORS]


class IQSource(abc.ABC):
    """A stream of complex64 blocks; see the module docstring."""

    uri: str
    datatype: str
    sample_rate_hz: float | None
    center_freq_hz: float | None
    stats: SourceStats

    def __init__(
        self,
        uri: str,
        *,
        datatype: str,
        sample_rate_hz: float | None,
        center_freq_hz: float | None,
        block_samples: int,
    ) -> None:
        self.uri = uri
        self.datatype = datatype
        self.sample_rate_hz = None if sample_rate_hz is None else float(sample_rate_hz)
        self.center_freq_hz = None if center_freq_hz is None else float(center_freq_hz)
        self.block_samples = int(block_samples)
        self.stats = SourceStats()
        self._closed = False

    @abc.abstractmethod
    def read(self, timeout_s: float) -> np.ndarray | None:
        """Next block of complex64 samples (length >= 1), ``None`` on timeout.

        Raises ``EOFError`` at the end of a finite source.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release sockets / files.  Idempotent."""

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self.uri}: read from a closed source")

    def __enter__(self) -> "IQSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.uri!r}, datatype={self.datatype!r}, "
            f"sample_rate_hz={self.sample_rate_hz!r})"
        )


def _bytes_to_native(buf: bytes | bytearray | memoryview, datatype: str) -> np.ndarray:
    """Whole samples of interleaved I/Q bytes as an (n, 2) array of their integer
    components (a read-only view of ``buf``; ``signals.iq.to_complex64`` converts it)."""
    comp, _ = _FORMATS[datatype]
    return np.frombuffer(buf, dtype=comp).reshape(-1, 2)


class _Assembler:
    """Carries the bytes of an incomplete sample from one chunk to the next."""

    def __init__(self, datatype: str) -> None:
        self.datatype = datatype
        self.bps = _bytes_per_sample(datatype)
        self._carry = b""
        self.native = False  # integer formats: (n, 2) component arrays instead of complex64

    @property
    def pending(self) -> int:
        return len(self._carry)

    def feed(self, data: bytes) -> np.ndarray | None:
        if self._carry:
            data = self._carry + data
        n_whole = len(data) - len(data) % self.bps
        self._carry = bytes(data[n_whole:])
        if n_whole == 0:
            return None
        if self.native:
            return _bytes_to_native(data if n_whole == len(data) else memoryview(data)[:n_whole], self.datatype)
        return _bytes_to_complex64(memoryview(data)[:n_whole], self.datatype)

    def discard(self) -> int:
        n = len(self._carry)
        self._carry = b""
        return n


class _ByteStreamSource(IQSource):
    """Base of sources reading a byte stream (files, stdin, TCP)."""

    def __init__(self, uri: str, **kw: Any) -> None:
        super().__init__(uri, **kw)
        self._asm = _Assembler(self.datatype)
        self._bps = self._asm.bps

    @property
    def native_capable(self) -> bool:
        """Integer sample formats can be delivered unconverted (:meth:`set_native`)."""
        return self.datatype[:2] != "cf"

    def set_native(self, on: bool = True) -> None:
        """Deliver (n, 2) arrays of the integer I/Q components instead of complex64
        (half the memory in a queue; the consumer converts only what it reads)."""
        if on and not self.native_capable:
            raise ValueError(f"{self.uri}: {self.datatype} samples have no integer form")
        self._asm.native = bool(on)

    @property
    def native(self) -> bool:
        return self._asm.native

    def _chunk_bytes(self) -> int:
        return max(self._bps, self.block_samples * self._bps - self._asm.pending)

    def _take(self, data: bytes) -> np.ndarray | None:
        self.stats.bytes_in += len(data)
        out = self._asm.feed(data)
        self.stats.partial_bytes_pending = self._asm.pending
        if out is not None:
            self.stats.samples_in += len(out)
        return out

    def _discard_partial(self, why: str) -> None:
        n = self._asm.discard()
        self.stats.partial_bytes_pending = 0
        if n:
            self.stats.dropped_bytes += n
            self.stats.note_error(f"{why}: dropped {n} bytes of an incomplete sample")


def _deadline(timeout_s: float | None) -> float:
    t = 0.0 if timeout_s is None else max(0.0, float(timeout_s))
    return time.monotonic() + t


# ---------------------------------------------------------------------------
# Files and stdin
# ---------------------------------------------------------------------------


def _sigmf_kind(path: str) -> str | None:
    """'meta' / 'data' / 'archive' / 'base' when ``path`` names a SigMF recording."""
    low = path.lower()
    if low.endswith(".sigmf-meta"):
        return "meta"
    if low.endswith(".sigmf-data"):
        return "data"
    if low.endswith(".sigmf"):
        return "archive"
    if os.path.exists(path + ".sigmf-meta") or os.path.exists(path + ".sigmf-data"):
        return "base"
    return None


class FileSource(_ByteStreamSource):
    """Raw interleaved I/Q file, optionally followed while it grows."""

    def __init__(
        self,
        uri: str,
        path: str,
        *,
        follow: bool = False,
        poll_interval_s: float = 0.05,
        **kw: Any,
    ) -> None:
        super().__init__(uri, **kw)
        self.path = path
        self.follow = bool(follow)
        self.poll_interval_s = float(poll_interval_s)
        if not self.poll_interval_s > 0:
            raise ValueError(f"{uri}: poll_interval_s must be > 0")
        self._f = open(path, "rb", buffering=0)  # unbuffered: re-reads after EOF
        self._pos = 0
        self._eof = False

    def read(self, timeout_s: float) -> np.ndarray | None:
        self._check_open()
        if self._eof:
            raise EOFError(self.uri)
        deadline = _deadline(timeout_s)
        while True:
            data = self._f.read(self._chunk_bytes())
            if data:
                self._pos += len(data)
                out = self._take(data)
                if out is not None:
                    return out
                continue  # only part of a sample so far: look for more now
            if not self.follow:
                self._discard_partial("end of file")
                self._eof = True
                raise EOFError(self.uri)
            try:
                size = os.fstat(self._f.fileno()).st_size
            except OSError:  # pragma: no cover - fd vanished
                size = self._pos
            if size < self._pos:
                self.stats.note_error(f"{self.path}: file shrank to {size} bytes; reading from 0")
                self._discard_partial("file truncated")
                self._f.seek(0)
                self._pos = 0
                continue
            now = time.monotonic()
            if now >= deadline:
                return None
            time.sleep(min(self.poll_interval_s, deadline - now))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._f.close()


class _SigmfFileSource(IQSource):
    """A SigMF recording read through ``signals.iq`` (no follow), part by part
    (:func:`signals.iq.capture_parts`): no block spans two parts, and at the first
    block of each part after the first, ``stats.discontinuities`` counts one more and
    ``part_center_freq_hz`` is that part's centre frequency (the daemon resets its
    receiver there, at the new frequency)."""

    def __init__(self, uri: str, reader: Any, **kw: Any) -> None:
        super().__init__(uri, **kw)
        self._reader = reader
        self._bps = _FORMATS.get(self.datatype, ("", 0))[1]
        meta = getattr(reader, "meta", None)
        self.parts = iqio.capture_parts(meta) if meta is not None else []
        self.part_center_freq_hz = self.parts[0][2] if self.parts else self.center_freq_hz
        self._it = self._blocks()
        self._eof = False

    def _blocks(self):
        if not self.parts:
            yield from self._reader.blocks(self.block_samples)
            return
        for k, (a, b, freq) in enumerate(self.parts):
            if b <= a:
                continue
            for i, block in enumerate(self._reader.blocks(self.block_samples, start=a, count=b - a)):
                if k and not i:
                    self.stats.discontinuities += 1
                    self.part_center_freq_hz = freq
                yield block

    def read(self, timeout_s: float) -> np.ndarray | None:
        self._check_open()
        while not self._eof:
            try:
                block = next(self._it)
            except StopIteration:
                self._eof = True
                break
            block = np.asarray(block, dtype=np.complex64)
            if len(block):
                self.stats.samples_in += len(block)
                self.stats.bytes_in += len(block) * self._bps
                return block
        raise EOFError(self.uri)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            closer = getattr(self._reader, "close", None)
            if callable(closer):
                closer()


def _open_file(
    uri: str,
    path: str,
    *,
    datatype: str | None,
    sample_rate_hz: float | None,
    center_freq_hz: float | None,
    follow: bool,
    block_samples: int,
    opts: dict[str, Any],
) -> IQSource:
    _check_opts(uri, opts, {"poll_interval_s"})
    kind = _sigmf_kind(path)
    if kind is None:
        dt = _require_raw(uri, datatype, sample_rate_hz)
        return FileSource(
            uri, path, follow=follow, datatype=dt, sample_rate_hz=sample_rate_hz,
            center_freq_hz=center_freq_hz, block_samples=block_samples, **opts,
        )
    if kind == "archive" and follow:
        raise ValueError(f"{uri}: follow=True is not possible for a .sigmf archive")
    if datatype is not None:
        try:
            datatype = normalize_datatype(datatype)
        except ValueError:
            pass  # let signals.iq judge it
    # allow_partial: a recording still being written may end mid-sample
    reader = iqio.open_iq(
        path, datatype=datatype, sample_rate_hz=sample_rate_hz, center_freq_hz=center_freq_hz,
        allow_partial=True,
    )
    meta = reader.meta
    dt = getattr(meta, "datatype", None) or datatype or ""
    try:
        dt = normalize_datatype(dt)
    except ValueError:
        if follow:  # the tail reader converts bytes itself
            reader_close = getattr(reader, "close", None)
            if callable(reader_close):
                reader_close()
            raise ValueError(f"{uri}: follow=True does not support format {dt!r}") from None
    rate = getattr(meta, "sample_rate_hz", None) or sample_rate_hz
    cf = getattr(meta, "center_freq_hz", None)
    cf = center_freq_hz if cf is None else cf
    if rate is None:
        raise ValueError(f"{uri}: no sample rate in the SigMF metadata; give sample_rate_hz")
    common = dict(datatype=dt, sample_rate_hz=rate, center_freq_hz=cf, block_samples=block_samples)
    if not follow:
        src = _SigmfFileSource(uri, reader, **common)
        src.stats.dropped_bytes = int(getattr(reader, "n_dropped_bytes", 0) or 0)
        return src
    data_path = getattr(meta, "path", None) or path
    closer = getattr(reader, "close", None)
    if callable(closer):
        closer()
    return FileSource(uri, data_path, follow=True, **common, **opts)


class StdinSource(_ByteStreamSource):
    """Raw bytes from stdin (or ``fileobj``); EOF raises ``EOFError``.

    When the file object has a usable ``fileno()`` it is read with
    ``select`` + ``os.read`` on the descriptor (unbuffered, so nothing the
    Python object might have buffered before is seen); otherwise (e.g.
    ``io.BytesIO``) with ``read1``/``read``, which must not block.
    """

    def __init__(self, uri: str, fileobj: BinaryIO | None = None, **kw: Any) -> None:
        super().__init__(uri, **kw)
        if fileobj is None:
            fileobj = getattr(sys.stdin, "buffer", sys.stdin)
        self._fileobj = fileobj
        self._fd: int | None
        try:
            self._fd = fileobj.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self._eof = False

    def _read_some(self, n: int, timeout: float) -> bytes | None:
        if self._fd is not None:
            try:
                ready, _, _ = select.select([self._fd], [], [], timeout)
            except (OSError, ValueError):  # pragma: no cover - select unsupported
                ready = [self._fd]
            if not ready:
                return None
            return os.read(self._fd, n)
        reader = getattr(self._fileobj, "read1", None) or self._fileobj.read
        data = reader(n)
        return b"" if data is None else bytes(data)

    def read(self, timeout_s: float) -> np.ndarray | None:
        self._check_open()
        if self._eof:
            raise EOFError(self.uri)
        deadline = _deadline(timeout_s)
        while True:
            data = self._read_some(self._chunk_bytes(), max(0.0, deadline - time.monotonic()))
            if data is None:
                return None
            if not data:
                self._discard_partial("end of input")
                self._eof = True
                raise EOFError(self.uri)
            out = self._take(data)
            if out is not None:
                return out
            if time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        # stdin itself is not ours to close; an injected file object is the
        # caller's too.
        self._closed = True


# ---------------------------------------------------------------------------
# TCP
# ---------------------------------------------------------------------------


class TcpClientSource(_ByteStreamSource):
    """TCP client with reconnection and exponential backoff."""

    def __init__(
        self,
        uri: str,
        host: str,
        port: int,
        *,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        recv_buffer_bytes: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(uri, **kw)
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError(f"{uri}: need 0 < backoff_initial_s <= backoff_max_s")
        if not connect_timeout_s > 0:
            raise ValueError(f"{uri}: connect_timeout_s must be > 0")
        self.address = (host, port)
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_max_s = float(backoff_max_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self._rcvbuf = recv_buffer_bytes
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()  # guards _sock swaps and sends
        self._backoff = self.backoff_initial_s
        self._next_attempt = 0.0

    @property
    def connected(self) -> bool:
        return self._sock is not None

    # -- connection management ---------------------------------------------
    def _try_connect(self, timeout: float) -> None:
        try:
            sock = socket.create_connection(self.address, timeout=timeout)
        except OSError as e:
            self.stats.connect_failures += 1
            self.stats.note_error(f"connect to {self.address[0]}:{self.address[1]} failed: {e}")
            self._next_attempt = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2.0, self.backoff_max_s)
            return
        if self._rcvbuf:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(self._rcvbuf))
            except OSError:  # pragma: no cover
                pass
        with self._lock:
            if self._closed:
                sock.close()
                return
            self._sock = sock
        if self.stats.connections:
            self.stats.reconnects += 1
        self.stats.connections += 1
        self._backoff = self.backoff_initial_s
        self._on_connected()

    def _on_connected(self) -> None:
        """Hook for protocols with a greeting (rtl_tcp)."""

    def _drop(self, why: str) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        self.stats.note_error(f"{self.address[0]}:{self.address[1]}: {why}")
        self._discard_partial("connection lost")
        self._next_attempt = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2.0, self.backoff_max_s)

    # -- reading -------------------------------------------------------------
    def read(self, timeout_s: float) -> np.ndarray | None:
        self._check_open()
        deadline = _deadline(timeout_s)
        while True:
            sock = self._sock
            if sock is None:
                now = time.monotonic()
                if now >= self._next_attempt:
                    left = deadline - now
                    self._try_connect(min(self.connect_timeout_s, max(left, 0.05)))
                    continue
                if now >= deadline:
                    return None
                time.sleep(min(self._next_attempt, deadline) - now)
                continue
            try:
                sock.settimeout(max(0.0, deadline - time.monotonic()))
                data = sock.recv(self._chunk_bytes())
            except (socket.timeout, BlockingIOError, InterruptedError):
                return None
            except OSError as e:
                if self._closed:
                    raise ValueError(f"{self.uri}: source closed") from e
                self._drop(f"receive failed: {e}")
                continue
            if not data:
                self._drop("closed by peer")
                continue
            out = self._take(data)
            if out is not None:
                return out
            if time.monotonic() >= deadline:
                return None

    def _send(self, payload: bytes) -> bool:
        """Send on the current connection; False (and a drop) on failure."""
        with self._lock:
            sock = self._sock
            if sock is None:
                return False
            try:
                sock.settimeout(self.connect_timeout_s)
                sock.sendall(payload)
                return True
            except OSError as e:
                err = e
        self._drop(f"send failed: {err}")
        return False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


class RtlTcpSource(TcpClientSource):
    """rtl_tcp client: 12-byte ``RTL0`` header, then cu8 samples."""

    MAGIC = b"RTL0"
    CMD_SET_FREQ = 0x01
    CMD_SET_SAMPLE_RATE = 0x02
    CMD_SET_GAIN_MODE = 0x03
    CMD_SET_GAIN = 0x04
    #: order in which remembered settings are replayed after a connect
    _REPLAY_ORDER = (CMD_SET_SAMPLE_RATE, CMD_SET_FREQ, CMD_SET_GAIN_MODE, CMD_SET_GAIN)

    def __init__(self, uri: str, host: str, port: int, *, tune: bool = True, **kw: Any) -> None:
        super().__init__(uri, host, port, **kw)
        self.tuner_type: int | None = None
        self.gain_count: int | None = None
        self._header = bytearray()
        self._header_done = False
        self._settings: dict[int, int] = {}
        if tune:
            if self.sample_rate_hz is not None:
                self._settings[self.CMD_SET_SAMPLE_RATE] = int(round(self.sample_rate_hz))
            if self.center_freq_hz is not None:
                self._settings[self.CMD_SET_FREQ] = int(round(self.center_freq_hz))

    @staticmethod
    def command_bytes(cmd: int, param: int) -> bytes:
        """The 5-byte rtl_tcp command packet: uint8 cmd, uint32 big-endian param."""
        return struct.pack(">BI", cmd & 0xFF, int(param) & 0xFFFFFFFF)

    def _on_connected(self) -> None:
        self._header = bytearray()
        self._header_done = False

    def _take(self, data: bytes) -> np.ndarray | None:
        if not self._header_done:
            self.stats.bytes_in += len(data)
            self._header += data
            if len(self._header) < 12:
                return None
            head, rest = bytes(self._header[:12]), bytes(self._header[12:])
            self._header = bytearray()
            if head[:4] != self.MAGIC:
                with self._lock:
                    sock, self._sock = self._sock, None
                if sock is not None:
                    sock.close()
                msg = (f"{self.uri}: not an rtl_tcp server: expected magic {self.MAGIC!r}, "
                       f"got {head[:4]!r}")
                self.stats.note_error(msg)
                raise SourceProtocolError(msg)
            self.tuner_type, self.gain_count = struct.unpack(">II", head[4:])
            self._header_done = True
            for cmd in self._REPLAY_ORDER:
                if cmd in self._settings and self._sock is not None:
                    self._send(self.command_bytes(cmd, self._settings[cmd]))
            if not rest:
                return None
            self.stats.bytes_in -= len(rest)  # counted again below
            data = rest
        return super()._take(data)

    def send_command(self, cmd: int, param: int) -> bool:
        """Send a raw rtl_tcp command now; False when not connected (or it failed)."""
        if self._sock is None or not self._header_done:
            return False
        return self._send(self.command_bytes(cmd, param))

    def _set(self, cmd: int, param: int) -> bool:
        self._settings[cmd] = int(param)
        return self.send_command(cmd, param)

    def set_center_freq(self, hz: float) -> bool:
        """Tune (command 0x01).  Remembered and replayed on reconnect.

        Returns whether it was sent now (otherwise it is sent on connect).
        """
        self.center_freq_hz = float(hz)
        return self._set(self.CMD_SET_FREQ, int(round(hz)))

    def set_sample_rate(self, hz: float) -> bool:
        """Set the sample rate (command 0x02)."""
        self.sample_rate_hz = float(hz)
        return self._set(self.CMD_SET_SAMPLE_RATE, int(round(hz)))

    def set_gain_db(self, gain_db: float | None) -> bool:
        """Manual gain in dB (0x03 mode=1, then 0x04 in tenths of dB); None = AGC (0x03 0)."""
        if gain_db is None:
            self._settings.pop(self.CMD_SET_GAIN, None)
            return self._set(self.CMD_SET_GAIN_MODE, 0)
        ok = self._set(self.CMD_SET_GAIN_MODE, 1)
        return self._set(self.CMD_SET_GAIN, int(round(gain_db * 10.0))) and ok


class TcpListenSource(_ByteStreamSource):
    """TCP server taking one sender at a time."""

    def __init__(
        self, uri: str, host: str, port: int, *, backlog: int = 4,
        recv_buffer_bytes: int | None = None, **kw: Any,
    ) -> None:
        super().__init__(uri, **kw)
        family, _, _, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        lsock = socket.socket(family, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind(addr)
            lsock.listen(int(backlog))
        except OSError:
            lsock.close()
            raise
        self._lsock = lsock
        self._rcvbuf = recv_buffer_bytes
        self.address = lsock.getsockname()[:2]
        self.peer: tuple | None = None
        self._conn: socket.socket | None = None

    def read(self, timeout_s: float) -> np.ndarray | None:
        self._check_open()
        deadline = _deadline(timeout_s)
        while True:
            if self._conn is None:
                try:
                    self._lsock.settimeout(max(0.0, deadline - time.monotonic()))
                    conn, peer = self._lsock.accept()
                except (socket.timeout, BlockingIOError, InterruptedError):
                    return None
                if self._rcvbuf:
                    try:
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(self._rcvbuf))
                    except OSError:  # pragma: no cover
                        pass
                self._conn, self.peer = conn, peer
                if self.stats.connections:
                    self.stats.reconnects += 1
                self.stats.connections += 1
            try:
                self._conn.settimeout(max(0.0, deadline - time.monotonic()))
                data = self._conn.recv(self._chunk_bytes())
            except (socket.timeout, BlockingIOError, InterruptedError):
                return None
            except OSError as e:
                self._close_conn(f"receive failed: {e}")
                continue
            if not data:
                self._close_conn("sender disconnected")
                continue
            out = self._take(data)
            if out is not None:
                return out
            if time.monotonic() >= deadline:
                return None

    def _close_conn(self, why: str) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        self.stats.note_error(f"{self.peer}: {why}")
        self._discard_partial("sender disconnected")
        self.peer = None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._lsock.close()


# ---------------------------------------------------------------------------
# Datagram / message sources
# ---------------------------------------------------------------------------


class _MessageSource(IQSource):
    """Each datagram / message holds whole samples; partial tails are dropped."""

    def _convert_message(self, payload: bytes | memoryview) -> np.ndarray | None:
        n = len(payload)
        self.stats.bytes_in += n
        bps = _bytes_per_sample(self.datatype)
        extra = n % bps
        if extra:
            self.stats.malformed_messages += 1
            self.stats.dropped_bytes += extra
            self.stats.note_error(
                f"message of {n} bytes is not a multiple of {bps}: dropped {extra} trailing bytes"
            )
        n -= extra
        if n == 0:
            return None
        return _bytes_to_complex64(memoryview(payload)[:n], self.datatype)

    def _finish(self, parts: list[np.ndarray]) -> np.ndarray | None:
        if not parts:
            return None
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        self.stats.samples_in += len(out)
        return out


class UdpSource(_MessageSource):
    """Binds ``host:port`` and receives datagrams of raw samples."""

    MAX_DATAGRAM = 65536

    def __init__(
        self, uri: str, host: str, port: int, *, recv_buffer_bytes: int | None = 4 << 20,
        **kw: Any,
    ) -> None:
        super().__init__(uri, **kw)
        family, _, _, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if recv_buffer_bytes:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(recv_buffer_bytes))
                except OSError:  # pragma: no cover
                    pass
            sock.bind(addr)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.address = sock.getsockname()[:2]
        self._buf = bytearray(self.MAX_DATAGRAM)

    def read(self, timeout_s: float) -> np.ndarray | None:
        self._check_open()
        deadline = _deadline(timeout_s)
        parts: list[np.ndarray] = []
        total = 0
        view = memoryview(self._buf)
        while True:
            try:
                if parts:  # drain what is already queued, without waiting
                    self._sock.settimeout(0.0)
                else:
                    self._sock.settimeout(max(0.0, deadline - time.monotonic()))
                n = self._sock.recv_into(self._buf)
            except (socket.timeout, BlockingIOError, InterruptedError):
                return self._finish(parts)
            arr = self._convert_message(view[:n])
            if arr is not None:
                parts.append(arr)
                total += len(arr)
                if total >= self.block_samples:
                    return self._finish(parts)
            elif not parts and time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sock.close()


class ZmqSource(_MessageSource):
    """GNU Radio ZMQ PUB/PUSH sink reader (SUB or PULL socket).

    SUB drops silently (slow joiner, high-water mark): see module docstring.
    """

    def __init__(
        self, uri: str, host: str, port: int, *, pattern: str, bind: bool = False,
        rcvhwm: int | None = None, **kw: Any,
    ) -> None:
        super().__init__(uri, **kw)
        try:
            import zmq  # lazily: pyzmq is an optional dependency
        except ImportError as e:
            raise ImportError(
                f"{uri}: ZMQ sources need pyzmq: pip install ssbwatch[net]"
            ) from e
        self._zmq = zmq
        self._ctx = zmq.Context()
        kind = zmq.SUB if pattern == "sub" else zmq.PULL
        sock = self._ctx.socket(kind)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            if rcvhwm is not None:
                sock.setsockopt(zmq.RCVHWM, int(rcvhwm))
            if kind == zmq.SUB:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            h = f"[{host}]" if ":" in host else host
            endpoint = f"tcp://{h}:{port}"
            if bind:
                if ":" in host:
                    sock.setsockopt(zmq.IPV6, 1)
                sock.bind(endpoint)
                endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
            else:
                if ":" in host:
                    sock.setsockopt(zmq.IPV6, 1)
                sock.connect(endpoint)
        except Exception:
            sock.close(0)
            self._ctx.term()
            raise
        self.endpoint = endpoint
        self.address = (host, int(endpoint.rsplit(":", 1)[1]))
        self.pattern = pattern
        self._sock = sock
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)

    def read(self, timeout_s: float) -> np.ndarray | None:
        self._check_open()
        zmq = self._zmq
        deadline = _deadline(timeout_s)
        parts: list[np.ndarray] = []
        total = 0
        while True:
            if not parts:
                wait_ms = max(0, int(round((deadline - time.monotonic()) * 1000)))
                if not self._poller.poll(wait_ms):
                    return None
            try:
                msg = self._sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                if parts or time.monotonic() >= deadline:
                    return self._finish(parts)
                continue
            arr = self._convert_message(msg.buffer)
            if arr is not None:
                parts.append(arr)
                total += len(arr)
                if total >= self.block_samples:
                    return self._finish(parts)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sock.close(0)
            self._ctx.term()


# ---------------------------------------------------------------------------
# open_source
# ---------------------------------------------------------------------------

_NET_SCHEMES = ("tcp", "tcp-listen", "udp", "rtltcp", "zmq+sub", "zmq+pull")

_OPTS = {
    "tcp": {"backoff_initial_s", "backoff_max_s", "connect_timeout_s", "recv_buffer_bytes"},
    "rtltcp": {"backoff_initial_s", "backoff_max_s", "connect_timeout_s", "recv_buffer_bytes",
               "tune"},
    "tcp-listen": {"backlog", "recv_buffer_bytes"},
    "udp": {"recv_buffer_bytes"},
    "zmq+sub": {"bind", "rcvhwm"},
    "zmq+pull": {"bind", "rcvhwm"},
    "-": {"fileobj"},
}


def _check_opts(uri: str, opts: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(opts) - allowed)
    if unknown:
        raise ValueError(
            f"{uri}: unknown option(s) {unknown} for this source; allowed: {sorted(allowed)}"
        )


def _require_raw(uri: str, datatype: str | None, sample_rate_hz: float | None) -> str:
    missing = []
    if not datatype:
        missing.append("format (datatype / --format)")
    if sample_rate_hz is None:
        missing.append("sample rate (sample_rate_hz / --sample-rate)")
    if missing:
        raise ValueError(f"{uri}: raw I/Q input needs " + " and ".join(missing))
    if not float(sample_rate_hz) > 0:
        raise ValueError(f"{uri}: sample rate must be > 0, got {sample_rate_hz!r}")
    try:
        return normalize_datatype(datatype)
    except ValueError as e:
        raise ValueError(f"{uri}: {e}") from None


def _require_rate(uri: str, sample_rate_hz: float | None) -> None:
    if sample_rate_hz is None:
        raise ValueError(f"{uri}: needs the sample rate (sample_rate_hz / --sample-rate)")
    if not float(sample_rate_hz) > 0:
        raise ValueError(f"{uri}: sample rate must be > 0, got {sample_rate_hz!r}")


def _fixed_format(uri: str, datatype: str | None, fixed: str) -> str:
    if datatype is not None and normalize_datatype(datatype) != fixed:
        raise ValueError(f"{uri}: this source always carries {fixed}, not {datatype!r}")
    return fixed


def _host_port(uri: str) -> tuple[str, int]:
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port
    except ValueError as e:
        raise ValueError(f"{uri}: bad address ({e})") from None
    if not host or port is None:
        raise ValueError(f"{uri}: expected SCHEME://HOST:PORT (host and port are required)")
    return host, port


def open_source(
    uri: str,
    *,
    datatype: str | None = None,
    sample_rate_hz: float | None = None,
    center_freq_hz: float | None = None,
    follow: bool = False,
    block_samples: int = 65536,
    **opts: Any,
) -> IQSource:
    """Open the I/Q source named by ``uri`` (see the module docstring).

    ``datatype`` / ``sample_rate_hz`` / ``center_freq_hz`` are the caller's
    ``--format`` / ``--sample-rate`` / ``--center-freq``, needed where the
    source does not carry them.  ``opts`` are per-scheme options
    (``fileobj``, ``backoff_initial_s``, ``backoff_max_s``,
    ``connect_timeout_s``, ``recv_buffer_bytes``, ``poll_interval_s``,
    ``backlog``, ``tune``, ``bind``, ``rcvhwm``); an option the scheme does
    not know raises ``ValueError``.
    """
    if not isinstance(uri, str) or not uri:
        raise ValueError(f"source URI must be a non-empty string, got {uri!r}")
    if int(block_samples) < 1:
        raise ValueError(f"{uri}: block_samples must be >= 1")
    common = dict(center_freq_hz=center_freq_hz, block_samples=int(block_samples))

    if uri == "-":
        _check_opts(uri, opts, _OPTS["-"])
        dt = _require_raw(uri, datatype, sample_rate_hz)
        return StdinSource(uri, opts.get("fileobj"), datatype=dt,
                           sample_rate_hz=sample_rate_hz, **common)

    low = uri.lower()
    for scheme in _NET_SCHEMES:
        if low.startswith(scheme + ":") and not low.startswith(scheme + "://"):
            raise ValueError(f"{uri}: expected {scheme}://HOST:PORT")
    if "://" in uri and not low.startswith("file://"):
        scheme = uri.split("://", 1)[0].lower()
        if scheme not in _NET_SCHEMES:
            raise ValueError(
                f"{uri}: unknown source scheme {scheme!r}; expected file:, -, "
                + ", ".join(s + "://" for s in _NET_SCHEMES)
            )
        _check_opts(uri, opts, _OPTS[scheme])
        if follow:
            raise ValueError(f"{uri}: follow=True only applies to files")
        host, port = _host_port(uri)
        if scheme in ("tcp", "tcp-listen", "udp"):
            dt = _require_raw(uri, datatype, sample_rate_hz)
            cls = {"tcp": TcpClientSource, "tcp-listen": TcpListenSource, "udp": UdpSource}[scheme]
            return cls(uri, host, port, datatype=dt, sample_rate_hz=sample_rate_hz,
                       **common, **opts)
        if scheme == "rtltcp":
            dt = _fixed_format(uri, datatype, "cu8")
            _require_rate(uri, sample_rate_hz)
            return RtlTcpSource(uri, host, port, datatype=dt, sample_rate_hz=sample_rate_hz,
                                **common, **opts)
        dt = _fixed_format(uri, datatype, "cf32_le")
        _require_rate(uri, sample_rate_hz)
        return ZmqSource(uri, host, port, pattern=scheme.split("+", 1)[1], datatype=dt,
                         sample_rate_hz=sample_rate_hz, **common, **opts)

    if uri.lower().startswith("file://"):
        path = uri[len("file://"):]
    elif uri.lower().startswith("file:"):
        path = uri[len("file:"):]
    else:
        path = uri
    if not path:
        raise ValueError(f"{uri}: empty file path")
    return _open_file(
        uri, path, datatype=datatype, sample_rate_hz=sample_rate_hz,
        center_freq_hz=center_freq_hz, follow=follow, block_samples=int(block_samples),
        opts=dict(opts),
    )


@dataclass
class SourceSpec:
    """What the CLI / config knows about a source; ``open()`` opens it."""

    uri: str
    datatype: str | None = None
    sample_rate_hz: float | None = None
    center_freq_hz: float | None = None
    follow: bool = False
    block_samples: int = 65536
    options: dict[str, Any] = field(default_factory=dict)

    def open(self) -> IQSource:
        return open_source(
            self.uri, datatype=self.datatype, sample_rate_hz=self.sample_rate_hz,
            center_freq_hz=self.center_freq_hz, follow=self.follow,
            block_samples=self.block_samples, **self.options,
        )


# ---------------------------------------------------------------------------
# Bounded buffer between the reader and the processing
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueStats:
    """Snapshot of :class:`BlockQueue` counters.

    Invariant: ``samples_in == samples_out + samples_dropped + fill_samples``.
    """

    samples_in: int
    samples_out: int
    samples_dropped: int
    dropped_blocks: int
    fill_samples: int
    max_fill_samples: int
    max_samples: int


class BlockQueue:
    """Thread-safe FIFO of sample blocks, bounded by ``max_samples`` in total.

    ``put`` never blocks: a block that does not fit is dropped whole and
    counted.  Every offered sample gets an absolute index in the source
    stream (dropped ones too), and ``get`` returns each block with the index
    of its first sample, so a consumer sees a drop as a jump in the index
    and can keep SSB timing right across it.
    """

    def __init__(self, max_samples: int) -> None:
        if int(max_samples) < 1:
            raise ValueError(f"max_samples must be >= 1, got {max_samples!r}")
        self.max_samples = int(max_samples)
        self._q: collections.deque[tuple[np.ndarray, int]] = collections.deque()
        self._cv = threading.Condition()
        self._fill = 0
        self._next_index = 0
        self._closed = False
        self._samples_in = 0
        self._samples_out = 0
        self._samples_dropped = 0
        self._dropped_blocks = 0
        self._max_fill = 0

    def put(self, block: np.ndarray) -> bool:
        """Queue ``block`` (not copied: do not modify it afterwards).

        Returns False when it was dropped (no room, or the queue is closed).
        A block larger than ``max_samples`` is always dropped.  Empty blocks
        are ignored (True).
        """
        n = len(block)
        if n == 0:
            return True
        with self._cv:
            index = self._next_index
            self._next_index += n
            self._samples_in += n
            if self._closed or self._fill + n > self.max_samples:
                self._samples_dropped += n
                self._dropped_blocks += 1
                return False
            self._q.append((block, index))
            self._fill += n
            if self._fill > self._max_fill:
                self._max_fill = self._fill
            self._cv.notify()
            return True

    def skip(self, n_samples: int) -> None:
        """Advance the stream index by samples lost before the queue (counted as dropped)."""
        if n_samples > 0:
            with self._cv:
                self._next_index += int(n_samples)
                self._samples_in += int(n_samples)
                self._samples_dropped += int(n_samples)

    def get(self, timeout_s: float | None) -> tuple[np.ndarray, int] | None:
        """Oldest ``(block, first_sample_index)``, or None after ``timeout_s``
        (None = wait until data or close) or when closed and empty."""
        with self._cv:
            if not self._q and not self._closed:
                if timeout_s is None:
                    while not self._q and not self._closed:
                        self._cv.wait()
                else:
                    end = time.monotonic() + max(0.0, float(timeout_s))
                    while not self._q and not self._closed:
                        left = end - time.monotonic()
                        if left <= 0:
                            break
                        self._cv.wait(left)
            if not self._q:
                return None
            block, index = self._q.popleft()
            self._fill -= len(block)
            self._samples_out += len(block)
            self._cv.notify_all()  # (room for a producer waiting in wait_room)
            return block, index

    def wait_fill(self, n_samples: int, timeout_s: float) -> bool:
        """Wait until at least ``n_samples`` are queued, the queue is closed or
        ``timeout_s`` has passed; whether that many are queued."""
        return self._wait_until(lambda: self._fill >= n_samples, timeout_s)

    def _wait_until(self, ok, timeout_s: float) -> bool:
        """Wait (on the queue's condition: puts and gets wake it) until ``ok()``, the
        queue is closed or ``timeout_s`` has passed; ``ok()`` at the end."""
        end = time.monotonic() + max(0.0, float(timeout_s))
        with self._cv:
            while not ok() and not self._closed:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            return ok()

    def get_next(self, index: int, max_samples: int) -> np.ndarray | None:
        """The oldest block if it starts at ``index`` (nothing dropped since what
        was taken before) and holds at most ``max_samples``; else None, at once."""
        with self._cv:
            if not self._q:
                return None
            block, i = self._q[0]
            if i != index or len(block) > max_samples:
                return None
            self._q.popleft()
            self._fill -= len(block)
            self._samples_out += len(block)
            self._cv.notify_all()
            return block

    def wait_room(self, max_fill: int, timeout_s: float) -> bool:
        """Wait until at most ``max_fill`` samples are queued, the queue is closed or
        ``timeout_s`` has passed; whether the fill is that low (a producer that must
        not drop: a benchmark reading a file as fast as the consumer takes it)."""
        return self._wait_until(lambda: self._fill <= max_fill, timeout_s)

    def close(self) -> None:
        """No more puts (they are dropped and counted); wakes waiting getters."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def drained(self) -> bool:
        """Closed and empty: the consumer can stop."""
        with self._cv:
            return self._closed and not self._q

    def __len__(self) -> int:
        with self._cv:
            return len(self._q)

    @property
    def fill_samples(self) -> int:
        with self._cv:
            return self._fill

    @property
    def next_index(self) -> int:
        """Absolute index the next put block will get."""
        with self._cv:
            return self._next_index

    @property
    def stats(self) -> QueueStats:
        with self._cv:
            return QueueStats(
                samples_in=self._samples_in,
                samples_out=self._samples_out,
                samples_dropped=self._samples_dropped,
                dropped_blocks=self._dropped_blocks,
                fill_samples=self._fill,
                max_fill_samples=self._max_fill,
                max_samples=self.max_samples,
            )


class SourcePump:
    """Reader thread: ``source.read`` -> ``queue.put`` until EOF, error or close.

    At EOF (or an error, kept in ``error``) the queue is closed so the
    consumer sees ``queue.drained``.  ``close()`` stops and joins the thread;
    the source itself stays the caller's to close.
    """

    def __init__(self, source: IQSource, queue: BlockQueue, *, read_timeout_s: float = 0.1,
                 close_queue_at_end: bool = True) -> None:
        self.source = source
        self.queue = queue
        self.read_timeout_s = float(read_timeout_s)
        self.close_queue_at_end = close_queue_at_end
        self.eof = False
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ssbwatch-pump {source.uri}",
                                        daemon=True)

    def start(self) -> "SourcePump":
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                block = self.source.read(self.read_timeout_s)
                if block is not None:
                    self.queue.put(block)
        except EOFError:
            self.eof = True
        except BaseException as e:  # noqa: BLE001 - handed to the owner
            if not self._stop.is_set():
                self.error = e
                self.source.stats.note_error(f"reader stopped: {e!r}")
        finally:
            if self.close_queue_at_end:
                self.queue.close()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop and join the thread (bounded by ``timeout_s`` beyond one read)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s + self.read_timeout_s)

    def __enter__(self) -> "SourcePump":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
