"""IQ file I/O: SigMF recordings and raw interleaved IQ files.

Reads and writes single-channel complex IQ recordings in the SigMF format
(SigMF specification v1.0.0, https://github.com/sigmf/SigMF/blob/v1.0.0/sigmf-spec.md):
a ``X.sigmf-meta`` JSON file with the ``global``, ``captures`` and
``annotations`` objects next to a ``X.sigmf-data`` binary file. Headerless raw
files are read and written too; their datatype and sample rate come from the
caller.

Supported datatypes: every complex one of SigMF v1.0.0, ``c`` + ``f32`` /
``f64`` / ``i8`` / ``i16`` / ``i32`` / ``u8`` / ``u16`` / ``u32`` + ``_le`` /
``_be`` (none for 8 bits); :func:`normalize_datatype` also takes the names
other tools write (``cf32``, ``fc32``, ``sc16``, ``ci8_le``; any case). The
simulator writes the four an SDR host writes: ``cf32_le``, ``ci16_le``, ``ci8``
and ``cu8``. Samples are interleaved I, Q on disk.

Dtype policy
------------
Everything returned as IQ is ``np.complex64`` (full scale = 1.0):

=========  =======================  =========================================
datatype   on disk (per component)  to complex64
=========  =======================  =========================================
cf32_le    float32, little endian   bit-exact copy
ci16_le    int16, little endian     x / 32768
ci8        int8                     x / 128
cu8        uint8                    (x - 127.5) / 127.5   (rtl-sdr convention)
cf64_*     float64                  rounded to float32
ci16_be    int16, big endian        x / 32768
ci32_*     int32                    x / 2^31
cu16_*     uint16                   (x - 32767.5) / 32767.5
cu32_*     uint32                   (x - (2^32 - 1)/2) / ((2^32 - 1)/2)
=========  =======================  =========================================

Writing applies the inverse scale (computed in float64), rounds to the
nearest integer with ties to even (``np.rint``), and clips to the integer
range, so e.g. +1.0 is written as 32767 in ``ci16_le``. NaN is written as the
zero code (0, or 128 for ``cu8``) and +/-inf as the range limits. ``cu8`` has
no exact zero: 0.0 is written as 128, which reads back as 0.5/127.5.
Reading native integer samples and writing them back is bit-exact, and so is
a complex64 write/read in ``cf32_le``.

Readers are memory-mapped (``np.memmap``), so multi-GB recordings are never
loaded whole unless :meth:`IQReader.read_all` is called.

All malformed-input problems raise :class:`IQFormatError` (a ``ValueError``)
or one of its subclasses, with a message naming the file and the problem.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

__all__ = [
    "SUPPORTED_DATATYPES",
    "SIGMF_VERSION",
    "IQFormatError",
    "IQTruncatedError",
    "IQUnsupportedDatatypeError",
    "IQMetadataError",
    "IQMissingFileError",
    "IQMissingParameterError",
    "IQMeta",
    "IQReader",
    "bytes_per_sample",
    "lsb",
    "component_dtype",
    "normalize_datatype",
    "to_complex64",
    "from_complex64",
    "sigmf_paths",
    "is_sigmf_path",
    "is_sigmf_archive",
    "capture_parts",
    "read_sigmf_archive_meta",
    "write_sigmf",
    "SigMFWriter",
    "DISCONTINUITY_KEY",
    "write_raw",
    "read_sigmf_meta",
    "open_iq",
    "read_raw_samples",
    "append_annotations",
]

#: Every complex SigMF datatype (spec v1.0.0, "Dataset Format"): floats, signed and
#: unsigned integers, little and big endian (8-bit types have no byte order).
SUPPORTED_DATATYPES = (
    "cf32_le", "ci16_le", "ci8", "cu8",
    "cf64_le", "cf64_be", "cf32_be", "ci32_le", "ci32_be", "ci16_be",
    "cu32_le", "cu32_be", "cu16_le", "cu16_be",
)
SIGMF_VERSION = "1.0.0"
#: capture-segment key of a segment that does not continue the samples before it by
#: an unknown number of lost samples (a source that reconnected while recording);
#: its value says why. :func:`capture_parts` cuts the recording there.
DISCONTINUITY_KEY = "ssbwatch:discontinuity"

META_SUFFIX = ".sigmf-meta"
DATA_SUFFIX = ".sigmf-data"


def _component_dtype(datatype: str) -> np.dtype:
    """On-disk dtype of ONE component (I or Q) of a complex SigMF datatype."""
    kind, bits, order = datatype[1], int(datatype[2:].split("_")[0]), datatype.partition("_")[2]
    byte_order = {"le": "<", "be": ">", "": "|"}[order]
    return np.dtype(f"{byte_order}{kind}{bits // 8}")


# On-disk dtype of ONE component (I or Q) per datatype.
_COMPONENT_DTYPE: dict[str, np.dtype] = {d: _component_dtype(d) for d in SUPPORTED_DATATYPES}
# (scale, offset): complex64 value = (x - offset) / scale. Signed n-bit: 2^(n-1), 0 (so
# ci16 x / 32768); unsigned n-bit: the mid-scale (2^n - 1) / 2 for both (so cu8
# (x - 127.5) / 127.5, the rtl-sdr convention).
_INT_SCALE: dict[str, tuple[float, float]] = {}
for _d, _c in _COMPONENT_DTYPE.items():
    if _c.kind == "i":
        _INT_SCALE[_d] = (float(2 ** (8 * _c.itemsize - 1)), 0.0)
    elif _c.kind == "u":
        _INT_SCALE[_d] = ((2.0 ** (8 * _c.itemsize) - 1.0) / 2.0,) * 2

# Global keys describing layouts this module does not implement.
_UNSUPPORTED_GLOBAL_KEYS = ("core:dataset", "core:metadata_only")


# --------------------------------------------------------------------------- errors


class IQFormatError(ValueError):
    """Malformed, unsupported or inconsistent IQ file or parameters.

    Attributes
    ----------
    path : str or None
        The file concerned (also named in the message).
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)


class IQTruncatedError(IQFormatError):
    """Data file size is not a whole number of samples."""


class IQUnsupportedDatatypeError(IQFormatError):
    """Datatype is not one of :data:`SUPPORTED_DATATYPES`."""


class IQMetadataError(IQFormatError):
    """SigMF metadata is not valid JSON or violates the expected structure."""


class IQMissingFileError(IQFormatError):
    """A required data or metadata file does not exist."""


class IQMissingParameterError(IQFormatError):
    """A raw file was opened without its datatype and/or sample rate."""


# --------------------------------------------------------------------------- helpers


def _check_datatype(datatype: Any, path: str | os.PathLike | None = None) -> str:
    if not isinstance(datatype, str) or datatype not in _COMPONENT_DTYPE:
        where = f"{path}: " if path is not None else ""
        real = isinstance(datatype, str) and datatype.strip().lower()[:1] == "r"
        raise IQUnsupportedDatatypeError(
            f"{where}unsupported IQ datatype {datatype!r}"
            + ("; it holds real-valued samples, and the receiver needs complex (I/Q) ones" if real else "")
            + f"; supported datatypes are {', '.join(SUPPORTED_DATATYPES)}",
            path,
        )
    return datatype


#: names other tools give the same layouts (GNU Radio / UHD / numpy)
_DATATYPE_ALIASES = {"fc32": "cf32_le", "complex64": "cf32_le", "fc64": "cf64_le", "complex128": "cf64_le",
                     "sc16": "ci16_le", "sc8": "ci8"}


def normalize_datatype(datatype: Any, path: str | os.PathLike | None = None) -> str:
    """The SigMF name of a datatype as users and other tools write it: any case,
    ``cf32`` for ``cf32_le`` (a multi-byte type without its byte order is taken
    as little endian, as every SDR host writes it), ``ci8_le`` for ``ci8``, and
    the GNU Radio / UHD names ``fc32``, ``fc64``, ``sc16``, ``sc8``.

    Raises
    ------
    IQUnsupportedDatatypeError
        Naming the datatype (and `path`) when it is none of
        :data:`SUPPORTED_DATATYPES` (real-valued ``r*`` types included).
    """
    if not isinstance(datatype, str):
        return _check_datatype(datatype, path)
    key = datatype.strip().lower()
    key = _DATATYPE_ALIASES.get(key, key)
    if key in ("ci8_le", "ci8_be", "cu8_le", "cu8_be"):
        key = key[:3]
    elif key + "_le" in _COMPONENT_DTYPE:
        key += "_le"
    return _check_datatype(key if key in _COMPONENT_DTYPE else datatype, path)


def bytes_per_sample(datatype: str) -> int:
    """Bytes per complex sample (I and Q) on disk.

    Parameters
    ----------
    datatype : str
        One of :data:`SUPPORTED_DATATYPES`.

    Returns
    -------
    int
        16 for ``cf64_*``, 8 for ``cf32_*`` and ``c?32_*``, 4 for ``c?16_*``, 2 for
        ``ci8`` and ``cu8``.

    Raises
    ------
    IQUnsupportedDatatypeError
        For any other datatype.
    """
    return 2 * _COMPONENT_DTYPE[_check_datatype(datatype)].itemsize


def component_dtype(datatype: str) -> np.dtype:
    """numpy dtype of one on-disk I or Q component of ``datatype`` (byte order
    included: ``<i2`` for ``ci16_le``, ``>f8`` for ``cf64_be``)."""
    return _COMPONENT_DTYPE[_check_datatype(datatype)]


def lsb(datatype: str) -> float:
    """One quantisation step of ``datatype`` in the full-scale-1.0 units that
    :func:`to_complex64` returns (1/32768 for ``ci16_le``, 1/128 for ``ci8``,
    1/127.5 for ``cu8``); 0.0 for ``cf32_le``.

    Raises
    ------
    IQUnsupportedDatatypeError
        For an unknown datatype.
    """
    dt = _check_datatype(datatype)
    return 1.0 / _INT_SCALE[dt][0] if dt in _INT_SCALE else 0.0


def _native(dt: np.dtype) -> np.dtype:
    return dt.newbyteorder("=")


def to_complex64(raw: np.ndarray, datatype: str) -> np.ndarray:
    """Convert on-disk interleaved samples to complex64.

    Parameters
    ----------
    raw : np.ndarray
        Interleaved I/Q components, shape (2 n,) or (n, 2), with the
        component dtype of `datatype` (float32 / int16 / int8 / uint8 / ..., any
        byte order), e.g. ``np.frombuffer(buf, "<i2")``.
    datatype : str
        One of :data:`SUPPORTED_DATATYPES`.

    Returns
    -------
    np.ndarray
        complex64, shape (n,), full scale 1.0 (see the module's dtype
        policy). Always a new array (never a view of `raw`).

    Raises
    ------
    IQUnsupportedDatatypeError
        Unknown datatype.
    TypeError
        `raw` has the wrong dtype for `datatype`.
    ValueError
        `raw` does not have an even number of components.
    """
    comp = _COMPONENT_DTYPE[_check_datatype(datatype)]
    raw = np.asarray(raw)
    if raw.dtype.kind != comp.kind or raw.dtype.itemsize != comp.itemsize:
        raise TypeError(
            f"to_complex64: datatype {datatype!r} needs {_native(comp)} components, "
            f"got {raw.dtype}"
        )
    if raw.ndim == 2 and raw.shape[1] == 2:
        flat = raw.reshape(-1)
    elif raw.ndim == 1 and raw.size % 2 == 0:
        flat = raw
    else:
        raise ValueError(
            f"to_complex64: expected interleaved shape (2n,) or (n, 2), got {raw.shape}"
        )
    if comp.kind == "f":
        # astype copies (and byte-swaps if needed) bit-exactly for float32; cf64 is
        # rounded to float32
        return flat.astype(np.float32, order="C").view(np.complex64)
    scale, offset = _INT_SCALE[datatype]
    if comp.itemsize == 4:  # 32-bit integers: offset and scale in float64 (float32 holds 24 bits)
        return ((flat.astype(np.float64) - offset) / scale).astype(np.float32).view(np.complex64)
    pairs = flat.reshape(-1, 2).astype(np.float32)
    if offset:
        pairs -= np.float32(offset)
    pairs /= np.float32(scale)
    return pairs.view(np.complex64).reshape(-1)


def from_complex64(iq: np.ndarray, datatype: str) -> np.ndarray:
    """Convert complex samples to the on-disk interleaved representation.

    Parameters
    ----------
    iq : np.ndarray
        Complex samples, shape (n,), any complex dtype, full scale 1.0.
    datatype : str
        One of :data:`SUPPORTED_DATATYPES`.

    Returns
    -------
    np.ndarray
        Shape (2 n,), interleaved I, Q, dtype ``<f4`` / ``<i2`` / ``i1`` /
        ``u1``; ``arr.tobytes()`` is the file content.

    Notes
    -----
    ``cf32_le``: cast to complex64 (bit-exact for complex64 input).
    Integer types: ``rint(x * scale + offset)`` computed in float64, ties to
    even, clipped to the integer range; NaN -> zero code, +/-inf -> range
    limits. Scale/offset: ci16 32768/0, ci8 128/0, cu8 127.5/127.5.

    Raises
    ------
    IQUnsupportedDatatypeError
        Unknown datatype.
    TypeError
        `iq` is not complex.
    """
    comp = _COMPONENT_DTYPE[_check_datatype(datatype)]
    iq = np.asarray(iq)
    if not np.iscomplexobj(iq):
        raise TypeError(f"from_complex64: expected complex samples, got {iq.dtype}")
    iq = iq.reshape(-1)
    if comp.kind == "f":
        return iq.astype(np.complex64 if comp.itemsize == 4 else np.complex128).view(_native(comp)).astype(comp)
    scale, offset = _INT_SCALE[datatype]
    info = np.iinfo(comp)
    pairs = np.empty((iq.size, 2), dtype=np.float64)
    pairs[:, 0] = iq.real
    pairs[:, 1] = iq.imag
    pairs *= scale
    pairs += offset
    np.rint(pairs, out=pairs)
    np.nan_to_num(pairs, copy=False, nan=np.rint(offset), posinf=info.max, neginf=info.min)
    np.clip(pairs, info.min, info.max, out=pairs)
    return pairs.reshape(-1).astype(comp)


def _to_disk_array(iq: np.ndarray, datatype: str) -> np.ndarray:
    """Complex samples -> on-disk array; native component arrays pass through."""
    comp = _COMPONENT_DTYPE[_check_datatype(datatype)]
    arr = np.asarray(iq)
    if np.iscomplexobj(arr):
        return from_complex64(arr, datatype)
    if (
        arr.dtype.kind == comp.kind
        and arr.dtype.itemsize == comp.itemsize
        and ((arr.ndim == 2 and arr.shape[1] == 2) or (arr.ndim == 1 and arr.size % 2 == 0))
    ):
        return arr.reshape(-1).astype(comp)
    raise TypeError(
        f"samples must be complex (n,) or native {_native(comp)} interleaved "
        f"(n, 2) / (2n,) for datatype {datatype!r}; got {arr.dtype} {arr.shape}"
    )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def _atomic_write_bytes(path: Path, writer) -> None:
    """Write via ``writer(fileobj)`` to a temp file in the same dir, then os.replace."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _meta_bytes(path: Path, meta: dict) -> bytes:
    """Serialise a SigMF metadata document (strict JSON: no NaN/inf)."""
    try:
        text = json.dumps(meta, indent=2, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as e:
        raise IQMetadataError(f"{path}: cannot write SigMF metadata: {e}", path) from e
    return (text + "\n").encode("utf-8")


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(
        x, (bool, np.bool_)
    )


def _validate_annotations(annotations: Any, path: str | os.PathLike | None) -> list[dict]:
    where = f"{path}: " if path is not None else ""
    if not isinstance(annotations, list):
        raise IQMetadataError(
            f"{where}SigMF 'annotations' must be a list, got {type(annotations).__name__}",
            path,
        )
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise IQMetadataError(
                f"{where}SigMF annotation #{i} must be an object, got {type(ann).__name__}",
                path,
            )
        start = ann.get("core:sample_start")
        if not _is_int(start) or start < 0:
            raise IQMetadataError(
                f"{where}SigMF annotation #{i} needs a non-negative integer "
                f"'core:sample_start', got {start!r}",
                path,
            )
        if "core:sample_count" in ann:
            count = ann["core:sample_count"]
            if not _is_int(count) or count < 0:
                raise IQMetadataError(
                    f"{where}SigMF annotation #{i} has invalid 'core:sample_count' {count!r}",
                    path,
                )
    return annotations


def _sorted_annotations(annotations: Sequence[dict]) -> list[dict]:
    # Stable: annotations with equal starts keep their order.
    return sorted((dict(a) for a in annotations), key=lambda a: int(a["core:sample_start"]))


def _check_sample_rate(rate: Any, path: str | os.PathLike | None, what: str) -> float:
    where = f"{path}: " if path is not None else ""
    if rate is None:
        raise IQMetadataError(f"{where}missing {what}", path)
    if not _is_real(rate) or not np.isfinite(rate) or rate <= 0:
        raise IQMetadataError(
            f"{where}{what} must be a positive finite number, got {rate!r}", path
        )
    return float(rate)


# --------------------------------------------------------------------------- paths


def sigmf_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """Metadata and data paths of a SigMF recording.

    Parameters
    ----------
    path : str or os.PathLike
        ``X.sigmf-meta``, ``X.sigmf-data`` or the base ``X``.

    Returns
    -------
    (Path, Path)
        ``(X.sigmf-meta, X.sigmf-data)``.
    """
    s = os.fspath(path)
    for suffix in (META_SUFFIX, DATA_SUFFIX):
        if s.endswith(suffix):
            s = s[: -len(suffix)]
            break
    return Path(s + META_SUFFIX), Path(s + DATA_SUFFIX)


def is_sigmf_path(path: str | os.PathLike) -> bool:
    """True if `path` names a SigMF recording (by suffix, or because ``path.sigmf-meta``
    or ``path.sigmf-data`` exists)."""
    s = os.fspath(path)
    if s.endswith(META_SUFFIX) or s.endswith(DATA_SUFFIX):
        return True
    meta, data = sigmf_paths(s)
    return meta.exists() or data.exists()


# --------------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class IQMeta:
    """Description of one IQ recording.

    Attributes
    ----------
    path : str
        Data file path.
    datatype : str
        One of :data:`SUPPORTED_DATATYPES`.
    sample_rate_hz : float
        Sample rate in Hz (> 0).
    center_freq_hz : float or None
        RF centre frequency in Hz (``core:frequency`` of the first capture
        segment), None if unknown.
    n_samples : int
        Number of whole complex samples in the data file.
    global_ : dict
        The raw SigMF ``global`` object ({} for raw files).
    annotations : list of dict
        SigMF annotation objects, as stored ([] for raw files).
    captures : list of dict
        SigMF capture segments, as stored ([] for raw files).
    meta_path : str or None
        The ``.sigmf-meta`` path, None for raw files.
    num_channels, channel : int
        Channels in the recording (``core:num_channels``; the data file holds
        frames of one sample per channel, channel after channel) and the one
        this reader reads; ``n_samples`` counts frames.
    header_bytes : int
        Bytes skipped before the first sample (``core:header_bytes`` of the
        first capture segment).
    data_offset, data_bytes : int, int or None
        Where the recording's data lie in ``path`` when they are not the whole
        file (a member of a SigMF archive): their first byte and their size;
        0 and None otherwise. The first sample is at ``data_offset + header_bytes``.
    """

    path: str
    datatype: str
    sample_rate_hz: float
    center_freq_hz: float | None
    n_samples: int
    global_: dict = field(default_factory=dict)
    annotations: list = field(default_factory=list)
    captures: list = field(default_factory=list)
    meta_path: str | None = None
    num_channels: int = 1  # SigMF core:num_channels: frames of one sample per channel
    channel: int = 0  # the channel read
    header_bytes: int = 0  # bytes before the first sample (SigMF core:header_bytes)
    data_offset: int = 0  # where the data start in ``path`` (a SigMF archive's member)
    data_bytes: int | None = None  # the data's size when not the whole file (an archive member)

    @property
    def duration_s(self) -> float:
        """Recording duration in seconds."""
        return self.n_samples / self.sample_rate_hz


def _count_samples(data_path: Path, datatype: str, allow_partial: bool, n_channels: int = 1,
                   header_bytes: int = 0, trailing_bytes: int = 0, size: int | None = None) -> tuple[int, int]:
    """Return (n_samples, n_dropped_bytes) for a data file (samples: frames of
    ``n_channels`` samples, between ``header_bytes`` and ``trailing_bytes``);
    ``size``: the data's size in bytes when it is not the whole file (an
    archive member)."""
    if size is None:
        try:
            size = data_path.stat().st_size
        except FileNotFoundError:
            raise IQMissingFileError(f"{data_path}: IQ data file does not exist", data_path) from None
        if not data_path.is_file():
            raise IQMissingFileError(f"{data_path}: IQ data path is not a regular file", data_path)
    bps = bytes_per_sample(datatype) * n_channels
    body = size - header_bytes - trailing_bytes
    if body < 0:
        raise IQTruncatedError(
            f"{data_path}: file size {size} bytes is shorter than its {header_bytes} header and "
            f"{trailing_bytes} trailing bytes", data_path)
    n, rem = divmod(body, bps)
    if rem and not allow_partial:
        what = f"{n_channels}-channel frame" if n_channels > 1 else "sample"
        raise IQTruncatedError(
            f"{data_path}: file size {size} bytes is not a multiple of the {bps}-byte "
            f"{datatype} {what} size ({rem} trailing bytes; truncated or wrong datatype?). "
            "Pass allow_partial=True to ignore the partial sample.",
            data_path,
        )
    return n, rem


def _load_meta_json(meta_path: Path) -> dict:
    try:
        raw = meta_path.read_bytes()
    except FileNotFoundError:
        raise IQMissingFileError(
            f"{meta_path}: SigMF metadata file does not exist", meta_path
        ) from None
    return _parse_meta_json(raw, meta_path)


def _parse_meta_json(raw: bytes, meta_path: Path) -> dict:
    """A SigMF metadata document from its bytes (``meta_path`` names it in errors):
    UTF-8 JSON, an object with a ``global`` object."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise IQMetadataError(f"{meta_path}: SigMF metadata is not UTF-8 text ({e})", meta_path) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise IQMetadataError(
            f"{meta_path}: SigMF metadata is not valid JSON: {e.msg} "
            f"(line {e.lineno}, column {e.colno})",
            meta_path,
        ) from None
    if not isinstance(doc, dict):
        raise IQMetadataError(
            f"{meta_path}: SigMF metadata must be a JSON object, got {type(doc).__name__}",
            meta_path,
        )
    if "global" not in doc:
        raise IQMetadataError(f"{meta_path}: SigMF metadata has no 'global' object", meta_path)
    if not isinstance(doc["global"], dict):
        raise IQMetadataError(
            f"{meta_path}: SigMF 'global' must be an object, got {type(doc['global']).__name__}",
            meta_path,
        )
    return doc


def read_sigmf_meta(path: str | os.PathLike, allow_partial: bool = False, channel: int = 0) -> IQMeta:
    """Read and validate a SigMF recording's metadata.

    Parameters
    ----------
    path : str or os.PathLike
        ``X.sigmf-meta``, ``X.sigmf-data`` or base ``X``.
    allow_partial : bool
        If True, a data file whose size is not a whole number of samples is
        accepted and the trailing partial sample ignored (see
        :class:`IQReader`'s ``n_dropped_bytes``); otherwise that raises.
    channel : int
        The channel to read of a multi-channel recording (``core:num_channels``).
        ``core:header_bytes`` of the first capture segment and
        ``core:trailing_bytes`` are skipped.

    Returns
    -------
    IQMeta
        ``n_samples`` is derived from the data file size.

    Raises
    ------
    IQMissingFileError
        The metadata or data file does not exist.
    IQMetadataError
        Bad JSON, missing/invalid ``global``, ``core:datatype``,
        ``core:sample_rate``, ``captures`` or ``annotations``, a channel the
        recording does not have, or a layout feature this module does not
        support (``core:dataset``, ``core:metadata_only``, header bytes inside
        the data).
    IQUnsupportedDatatypeError
        ``core:datatype`` is not supported.
    IQTruncatedError
        Data size not a multiple of the sample size (unless `allow_partial`).
    """
    meta_path, data_path = sigmf_paths(path)
    return _meta_from_doc(_load_meta_json(meta_path), meta_path, data_path, allow_partial, channel)


def _meta_from_doc(doc: dict, meta_path: Path, data_path: Path, allow_partial: bool, channel: int,
                   data_offset: int = 0, data_size: int | None = None) -> IQMeta:
    """:func:`read_sigmf_meta` of a parsed metadata document whose data lie in
    ``data_path`` from byte ``data_offset`` on, ``data_size`` bytes (None: the
    rest of the file)."""
    glob = doc["global"]

    if "core:datatype" not in glob:
        raise IQMetadataError(f"{meta_path}: SigMF global has no 'core:datatype'", meta_path)
    datatype = normalize_datatype(glob["core:datatype"], meta_path)
    rate = _check_sample_rate(glob.get("core:sample_rate"), meta_path, "SigMF 'core:sample_rate'")

    nch = glob.get("core:num_channels", 1)
    if not _is_int(nch) or nch < 1:
        raise IQMetadataError(
            f"{meta_path}: 'core:num_channels' must be a positive integer, got {nch!r}", meta_path)
    if not _is_int(channel) or not 0 <= channel < nch:
        raise IQMetadataError(
            f"{meta_path}: channel {channel!r} asked for, the recording has {nch} "
            f"('core:num_channels')", meta_path)
    trailing = glob.get("core:trailing_bytes", 0)
    if not _is_int(trailing) or trailing < 0:
        raise IQMetadataError(
            f"{meta_path}: 'core:trailing_bytes' must be a non-negative integer, got {trailing!r}", meta_path)
    for key in _UNSUPPORTED_GLOBAL_KEYS:
        if glob.get(key):
            raise IQMetadataError(
                f"{meta_path}: SigMF global key {key!r} is not supported", meta_path
            )

    captures = doc.get("captures", [])
    if not isinstance(captures, list) or not all(isinstance(c, dict) for c in captures):
        raise IQMetadataError(
            f"{meta_path}: SigMF 'captures' must be a list of objects", meta_path
        )
    header = captures[0].get("core:header_bytes", 0) if captures else 0
    if not _is_int(header) or header < 0:
        raise IQMetadataError(
            f"{meta_path}: 'core:header_bytes' must be a non-negative integer, got {header!r}", meta_path)
    for i, cap in enumerate(captures[1:], 1):
        if cap.get("core:header_bytes"):
            raise IQMetadataError(
                f"{meta_path}: capture #{i} puts 'core:header_bytes' inside the data (only the "
                "first capture segment's header is supported)",
                meta_path,
            )
    center = None
    if captures and "core:frequency" in captures[0]:
        center = captures[0]["core:frequency"]
        if not _is_real(center) or not np.isfinite(center):
            raise IQMetadataError(
                f"{meta_path}: capture 'core:frequency' must be a finite number, got {center!r}",
                meta_path,
            )
        center = float(center)

    annotations = _validate_annotations(doc.get("annotations", []), meta_path)
    n, _ = _count_samples(data_path, datatype, allow_partial, nch, header, trailing, data_size)
    return IQMeta(
        path=str(data_path),
        datatype=datatype,
        sample_rate_hz=rate,
        center_freq_hz=center,
        n_samples=n,
        global_=glob,
        annotations=annotations,
        captures=captures,
        meta_path=str(meta_path),
        num_channels=int(nch),
        channel=int(channel),
        header_bytes=int(header),
        data_offset=int(data_offset),
        data_bytes=data_size,
    )


ARCHIVE_SUFFIX = ".sigmf"


def is_sigmf_archive(path: str | os.PathLike) -> bool:
    """True if `path` is an existing file named ``*.sigmf`` (a SigMF archive)."""
    s = os.fspath(path)
    return s.endswith(ARCHIVE_SUFFIX) and os.path.isfile(s)


def read_sigmf_archive_meta(path: str | os.PathLike, allow_partial: bool = False, channel: int = 0) -> IQMeta:
    """Read and validate the recording in a SigMF archive (SigMF v1.0.0
    "SigMF Archive Format": an uncompressed tar holding ``X.sigmf-meta`` and
    ``X.sigmf-data``, usually in a folder ``X/``). The samples are read in
    place: ``IQMeta.path`` is the archive, ``data_offset`` / ``data_bytes``
    the data member's place in it; ``meta_path`` is ``archive/member``.

    Raises
    ------
    IQMissingFileError
        No such file.
    IQMetadataError
        Not a tar archive, a compressed one (the samples cannot be mapped in
        place: decompress it), no recording in it, more than one (they are
        named: extract the one wanted), a recording without its data member,
        or anything :func:`read_sigmf_meta` rejects.
    """
    import tarfile

    p = Path(path)
    if not p.is_file():
        raise IQMissingFileError(f"{p}: SigMF archive does not exist", p)
    with open(p, "rb") as fh:
        magic = fh.read(3)
    if magic[:2] == b"\x1f\x8b" or magic == b"BZh" or magic[:3] == b"\xfd7z":
        raise IQMetadataError(f"{p}: compressed SigMF archive (the samples cannot be read in place); "
                              "decompress it to a plain .sigmf tar or extract it", p)
    try:
        with tarfile.open(p, mode="r:") as tar:
            members = {m.name: m for m in tar.getmembers()}
            metas = sorted(n for n, m in members.items() if m.isfile() and n.endswith(META_SUFFIX))
            if not metas:
                raise IQMetadataError(f"{p}: SigMF archive holds no {META_SUFFIX} file", p)
            if len(metas) > 1:
                raise IQMetadataError(
                    f"{p}: SigMF archive holds {len(metas)} recordings ({', '.join(metas)}); extract the one "
                    "to read (tar -xf)", p)
            meta_name = metas[0]
            data_name = meta_name[: -len(META_SUFFIX)] + DATA_SUFFIX
            data = members.get(data_name)
            if data is None or not data.isfile():
                raise IQMissingFileError(f"{p}: SigMF archive has {meta_name} but no {data_name}", p)
            if data.issparse():
                raise IQMetadataError(f"{p}: {data_name} is stored sparse in the archive; extract it", p)
            raw = tar.extractfile(members[meta_name]).read()
    except tarfile.TarError as e:
        raise IQMetadataError(f"{p}: not a readable SigMF archive (tar): {e}", p) from None
    label = Path(f"{p}/{meta_name}")
    return _meta_from_doc(_parse_meta_json(raw, label), label, p, allow_partial, channel, data_offset=data.offset_data,
                          data_size=data.size)


def capture_parts(meta: IQMeta) -> list[tuple[int, int, float | None]]:
    """The recording cut where its SigMF capture segments say the samples do not
    continue one stream: ``[(start, stop, center_freq_hz), ...]`` covering
    ``[0, n_samples)``. A segment starts a new part when its ``core:frequency``
    differs from the part's (the receiver was retuned), when its
    ``core:global_index`` is not the previous segment's plus the samples between
    them (samples lost at the receiver), or when it carries DISCONTINUITY_KEY
    (samples lost, how many unknown: :class:`SigMFWriter`). Segments that continue the stream at the
    same frequency stay in one part; a raw file or a one-segment recording is one
    part."""
    n = meta.n_samples
    caps = [c for c in meta.captures if _is_int(c.get("core:sample_start", 0))]
    parts: list[list] = [[0, n, meta.center_freq_hz]]
    prev = caps[0] if caps else None
    for cap in caps[1:]:
        start = int(cap.get("core:sample_start", 0))
        if not 0 < start < n or start <= parts[-1][0]:
            prev = cap
            continue
        freq = cap.get("core:frequency", parts[-1][2])
        freq = float(freq) if _is_real(freq) and np.isfinite(freq) else parts[-1][2]
        gi0, gi1 = prev.get("core:global_index"), cap.get("core:global_index")
        gap = bool(cap.get(DISCONTINUITY_KEY)) or (
            _is_int(gi0) and _is_int(gi1) and gi1 - gi0 != start - int(prev.get("core:sample_start", 0)))
        if freq != parts[-1][2] or gap:
            parts[-1][1] = start
            parts.append([start, n, freq])
        prev = cap
    return [(a, b, f) for a, b, f in parts]


# --------------------------------------------------------------------------- reader


class IQReader:
    """Memory-mapped reader of one IQ recording; a context manager.

    Use :func:`open_iq` to construct one.

    Attributes
    ----------
    meta : IQMeta
        The recording's description.
    n_dropped_bytes : int
        Trailing bytes ignored because they do not form a whole sample (only
        non-zero when opened with ``allow_partial=True``).
    """

    def __init__(self, meta: IQMeta, n_dropped_bytes: int = 0):
        self.meta = meta
        self.n_dropped_bytes = int(n_dropped_bytes)
        comp = _COMPONENT_DTYPE[meta.datatype]
        self._nch = meta.num_channels
        if meta.n_samples > 0:
            self._mm: np.ndarray | None = np.memmap(
                meta.path, dtype=comp, mode="r", offset=meta.data_offset + meta.header_bytes,
                shape=(2 * meta.n_samples * self._nch,)
            )
        else:
            self._mm = np.empty(0, dtype=comp)

    # context manager -------------------------------------------------------
    def __enter__(self) -> "IQReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the memory map (arrays returned earlier stay valid)."""
        self._mm = None

    @property
    def closed(self) -> bool:
        return self._mm is None

    def __len__(self) -> int:
        return self.meta.n_samples

    @property
    def sample_rate_hz(self) -> float:
        return self.meta.sample_rate_hz

    def __repr__(self) -> str:
        m = self.meta
        return (
            f"IQReader({m.path!r}, {m.datatype}, {m.sample_rate_hz:g} Hz, "
            f"{m.n_samples} samples{', closed' if self.closed else ''})"
        )

    # reading ---------------------------------------------------------------
    def _slice(self, start: int, count: int) -> np.ndarray:
        if self._mm is None:
            raise ValueError(f"{self.meta.path}: reader is closed")
        if not _is_int(start) or not _is_int(count):
            raise TypeError(f"start and count must be integers, got {start!r}, {count!r}")
        n = self.meta.n_samples
        if start < 0 or count < 0 or start + count > n:
            raise IndexError(
                f"{self.meta.path}: cannot read samples [{start}, {start + count}) "
                f"of a {n}-sample recording"
            )
        if self._nch > 1:  # frames of one sample per channel: this reader's channel
            frames = self._mm[2 * self._nch * start : 2 * self._nch * (start + count)].reshape(count, self._nch, 2)
            return frames[:, self.meta.channel, :]
        return self._mm[2 * start : 2 * (start + count)]

    def read(self, start: int, count: int) -> np.ndarray:
        """Read `count` samples starting at sample index `start`.

        Returns
        -------
        np.ndarray
            complex64, shape (count,), full scale 1.0; a copy.

        Raises
        ------
        IndexError
            If ``[start, start + count)`` is not inside the recording.
        """
        return to_complex64(self._slice(start, count), self.meta.datatype)

    def read_native(self, start: int, count: int, copy: bool = True) -> np.ndarray:
        """Read samples without conversion.

        With ``copy=False`` a recording stored in the machine's byte order is
        returned as a read-only view of the memory map (no pass over the bytes:
        a reader that looks at a few windows of each block, such as the SSB
        tracker, touches those pages alone); another byte order is copied.

        Returns
        -------
        np.ndarray
            shape (count, 2) (columns I, Q), native-byte-order component
            dtype (float32 / int16 / int8 / uint8 / ...); a copy unless
            ``copy=False`` (then read-only, valid after :meth:`close`).
        """
        raw = np.asarray(self._slice(start, count))
        if not copy and raw.dtype.isnative:
            return raw.reshape(count, 2)
        return raw.astype(_native(raw.dtype)).reshape(count, 2)

    def blocks(
        self, block_size: int, start: int = 0, count: int | None = None
    ) -> Iterator[np.ndarray]:
        """Iterate over the recording in blocks.

        Parameters
        ----------
        block_size : int
            Samples per block (> 0).
        start : int
            First sample index.
        count : int or None
            Total samples to yield; None = up to the end.

        Yields
        ------
        np.ndarray
            complex64, shape (block_size,); the last block may be shorter.
        """
        if not _is_int(block_size) or block_size <= 0:
            raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
        if count is None:
            count = self.meta.n_samples - start
        self._slice(start, count)  # bounds check before the first yield
        stop = start + count
        for pos in range(start, stop, block_size):
            yield self.read(pos, min(block_size, stop - pos))

    def read_all(self) -> np.ndarray:
        """Whole recording, complex64, shape (n_samples,) (loads it into memory)."""
        return self.read(0, self.meta.n_samples)


def open_iq(
    path: str | os.PathLike,
    datatype: str | None = None,
    sample_rate_hz: float | None = None,
    center_freq_hz: float | None = None,
    *,
    allow_partial: bool = False,
    channel: int = 0,
) -> IQReader:
    """Open a SigMF or raw IQ recording for memory-mapped reading.

    A path ending in ``.sigmf-meta`` / ``.sigmf-data``, or a base ``X`` for
    which ``X.sigmf-meta`` or ``X.sigmf-data`` exists, is SigMF; anything
    else is a raw interleaved file and needs `datatype` and `sample_rate_hz`.

    Parameters
    ----------
    path : str or os.PathLike
        Recording path.
    datatype : str or None
        Raw files: one of :data:`SUPPORTED_DATATYPES` (required). SigMF: if
        given, must equal ``core:datatype``.
    sample_rate_hz : float or None
        Raw files: sample rate in Hz (required). SigMF: if given, must equal
        ``core:sample_rate``.
    center_freq_hz : float or None
        RF centre frequency in Hz. SigMF: used only when the metadata has
        none; must agree otherwise.
    allow_partial : bool
        Ignore a trailing partial sample instead of raising
        :class:`IQTruncatedError`; the ignored byte count is in
        ``reader.n_dropped_bytes``.
    channel : int
        SigMF: the channel of a multi-channel recording to read (0: the first).
        Raw files are single-channel (0 only).

    Returns
    -------
    IQReader

    Raises
    ------
    IQFormatError
        (subclasses) see :func:`read_sigmf_meta`; :class:`IQMissingParameterError`
        for a raw file without datatype/sample rate; :class:`IQMissingFileError`
        for a missing raw file.
    """
    s = os.fspath(path)
    archive = is_sigmf_archive(s)
    if archive or is_sigmf_path(s):
        meta = (read_sigmf_archive_meta if archive else read_sigmf_meta)(s, allow_partial=allow_partial,
                                                                         channel=channel)
        trailing = meta.global_.get("core:trailing_bytes", 0)
        _, dropped = _count_samples(Path(meta.path), meta.datatype, True, meta.num_channels, meta.header_bytes,
                                    trailing, meta.data_bytes)
        where = meta.meta_path
        if datatype is not None and normalize_datatype(datatype, where) != meta.datatype:
            raise IQFormatError(
                f"{where}: datatype {datatype!r} was requested but the metadata says "
                f"{meta.datatype!r}",
                where,
            )
        if sample_rate_hz is not None and float(sample_rate_hz) != meta.sample_rate_hz:
            raise IQFormatError(
                f"{where}: sample rate {sample_rate_hz!r} Hz was requested but the "
                f"metadata says {meta.sample_rate_hz!r} Hz",
                where,
            )
        if center_freq_hz is not None:
            if meta.center_freq_hz is None:
                meta = replace(meta, center_freq_hz=float(center_freq_hz))
            elif float(center_freq_hz) != meta.center_freq_hz:
                raise IQFormatError(
                    f"{where}: centre frequency {center_freq_hz!r} Hz was requested but "
                    f"the metadata says {meta.center_freq_hz!r} Hz",
                    where,
                )
        return IQReader(meta, dropped)

    data_path = Path(s)
    if channel != 0:
        raise IQFormatError(f"{data_path}: a raw IQ file holds one channel; channel {channel!r} asked for", data_path)
    if not data_path.exists():
        raise IQMissingFileError(
            f"{data_path}: IQ file does not exist (no {META_SUFFIX}/{DATA_SUFFIX} "
            "companions either)",
            data_path,
        )
    missing = [
        name
        for name, val in (("datatype", datatype), ("sample_rate_hz", sample_rate_hz))
        if val is None
    ]
    if missing:
        hint = f" (one of {', '.join(SUPPORTED_DATATYPES)})" if datatype is None else ""
        raise IQMissingParameterError(
            f"{data_path}: raw IQ file (no SigMF metadata) needs {' and '.join(missing)} "
            f"from the caller{hint}",
            data_path,
        )
    datatype = normalize_datatype(datatype, data_path)
    rate = _check_sample_rate(sample_rate_hz, data_path, "sample_rate_hz")
    if center_freq_hz is not None:
        center_freq_hz = float(center_freq_hz)
    n, dropped = _count_samples(data_path, datatype, allow_partial)
    meta = IQMeta(
        path=str(data_path),
        datatype=datatype,
        sample_rate_hz=rate,
        center_freq_hz=center_freq_hz,
        n_samples=n,
    )
    return IQReader(meta, dropped)


def read_raw_samples(
    path: str | os.PathLike,
    datatype: str | None = None,
    sample_rate_hz: float | None = None,
    start: int = 0,
    count: int | None = None,
    *,
    as_complex: bool = False,
    allow_partial: bool = False,
) -> np.ndarray:
    """Read samples from a SigMF or raw recording, natively by default.

    Parameters
    ----------
    path, datatype, sample_rate_hz, allow_partial
        As for :func:`open_iq`.
    start : int
        First sample index.
    count : int or None
        Number of samples; None = to the end.
    as_complex : bool
        False: native components, shape (count, 2), float32 / int16 / int8 /
        uint8. True: complex64, shape (count,).

    Returns
    -------
    np.ndarray
    """
    with open_iq(path, datatype, sample_rate_hz, allow_partial=allow_partial) as r:
        if count is None:
            count = r.meta.n_samples - start
        return r.read(start, count) if as_complex else r.read_native(start, count)


# --------------------------------------------------------------------------- writing


def write_raw(path: str | os.PathLike, iq: np.ndarray, datatype: str) -> Path:
    """Write a headerless interleaved IQ file (atomically).

    Parameters
    ----------
    path : str or os.PathLike
        Output file.
    iq : np.ndarray
        complex, shape (n,), full scale 1.0 (converted per
        :func:`from_complex64`), or already-native components of the
        datatype's dtype, shape (n, 2) or (2n,) (written unchanged).
    datatype : str
        One of :data:`SUPPORTED_DATATYPES`.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    disk = _to_disk_array(iq, datatype)
    _atomic_write_bytes(path, lambda f: f.write(disk.tobytes()))
    return path


def write_sigmf(
    base_path: str | os.PathLike,
    iq: np.ndarray,
    sample_rate_hz: float,
    datatype: str = "cf32_le",
    center_freq_hz: float | None = None,
    global_extra: dict | None = None,
    annotations: list[dict] | None = None,
    description: str | None = None,
) -> tuple[Path, Path]:
    """Write a SigMF v1.0.0 recording (data file, then metadata; each atomically).

    Parameters
    ----------
    base_path : str or os.PathLike
        ``X``, ``X.sigmf-meta`` or ``X.sigmf-data``.
    iq : np.ndarray
        complex, shape (n,), full scale 1.0, or native components (see
        :func:`write_raw`).
    sample_rate_hz : float
        Sample rate in Hz (> 0) -> ``core:sample_rate``.
    datatype : str
        One of :data:`SUPPORTED_DATATYPES`.
    center_freq_hz : float or None
        RF centre frequency in Hz -> first capture's ``core:frequency``.
    global_extra : dict or None
        Extra ``global`` keys (e.g. ``{"ssbwatch:scs_khz": 30}``); must not
        contradict ``core:datatype`` / ``core:sample_rate``. Extension
        namespaces are not declared in ``core:extensions`` automatically.
    annotations : list of dict or None
        SigMF annotation objects (``core:sample_start`` required, plus e.g.
        ``core:sample_count``, ``core:label``, ``ssbwatch:pci``); written
        sorted by ``core:sample_start`` (stable), caller's dicts unmodified.
    description : str or None
        ``core:description``.

    Returns
    -------
    (Path, Path)
        ``(meta_path, data_path)``.

    Raises
    ------
    IQFormatError
        Bad datatype, sample rate, annotations or conflicting `global_extra`.
    """
    meta_path, data_path = sigmf_paths(base_path)
    datatype = _check_datatype(datatype, meta_path)
    rate = _check_sample_rate(sample_rate_hz, meta_path, "sample_rate_hz")
    anns = _sorted_annotations(_validate_annotations(list(annotations or []), meta_path))

    glob: dict[str, Any] = {
        "core:datatype": datatype,
        "core:sample_rate": rate,
        "core:version": SIGMF_VERSION,
    }
    if description is not None:
        glob["core:description"] = str(description)
    for key, val in (global_extra or {}).items():
        if key in ("core:datatype", "core:sample_rate") and val != glob[key]:
            raise IQFormatError(
                f"{meta_path}: global_extra[{key!r}] = {val!r} contradicts {glob[key]!r}",
                meta_path,
            )
        glob[key] = val
    capture: dict[str, Any] = {"core:sample_start": 0}
    if center_freq_hz is not None:
        capture["core:frequency"] = float(center_freq_hz)
    doc = {"global": glob, "captures": [capture], "annotations": anns}

    meta_bytes = _meta_bytes(meta_path, doc)  # fail before writing anything
    disk = _to_disk_array(iq, datatype)
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(data_path, lambda f: f.write(disk.tobytes()))
    _atomic_write_bytes(meta_path, lambda f: f.write(meta_bytes))
    return meta_path, data_path


class SigMFWriter:
    """A SigMF recording written as its samples arrive (a live source).

    ``write(block)`` appends complex samples (full scale 1.0) or native components
    of ``datatype`` (see :func:`write_raw`) to a temporary data file beside the
    target; ``mark_discontinuity(why)`` starts a new capture segment at the next
    sample with :data:`DISCONTINUITY_KEY` (samples were lost in between, how many
    unknown); ``close()`` syncs the data, moves it into place and writes the
    metadata (atomically), and returns ``(meta_path, data_path)``. Used as a context
    manager, the recording is closed -- kept -- whatever ends the block, an error or
    Ctrl-C included; ``abort()`` removes it instead. An existing recording is
    not replaced unless ``overwrite``: :class:`IQFormatError` naming it.
    """

    def __init__(self, base_path: str | os.PathLike, sample_rate_hz: float, datatype: str,
                 center_freq_hz: float | None = None, description: str | None = None,
                 global_extra: dict | None = None, overwrite: bool = False,
                 datetime_utc: str | None = None) -> None:
        self.meta_path, self.data_path = sigmf_paths(base_path)
        self.datatype = _check_datatype(datatype, self.meta_path)
        self.rate = _check_sample_rate(sample_rate_hz, self.meta_path, "sample_rate_hz")
        if not overwrite:
            for p in (self.meta_path, self.data_path):
                if p.exists():
                    raise IQFormatError(f"{p}: exists; not replaced (choose another name, or overwrite)", p)
        self.center_freq_hz = None if center_freq_hz is None else float(center_freq_hz)
        self.glob: dict[str, Any] = {"core:datatype": self.datatype, "core:sample_rate": self.rate,
                                     "core:version": SIGMF_VERSION}
        if description is not None:
            self.glob["core:description"] = str(description)
        for key, val in (global_extra or {}).items():
            if key in ("core:datatype", "core:sample_rate") and val != self.glob[key]:
                raise IQFormatError(f"{self.meta_path}: global_extra[{key!r}] = {val!r} contradicts "
                                    f"{self.glob[key]!r}", self.meta_path)
            self.glob[key] = val
        self.captures: list[dict[str, Any]] = [self._segment(0, datetime_utc)]
        _meta_bytes(self.meta_path, {"global": self.glob, "captures": self.captures, "annotations": []})
        self.meta_path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.data_path.with_name(f".{self.data_path.name}.{os.getpid()}.tmp")
        self._f = open(self._tmp, "wb")
        self.n_samples = 0
        self._pending: str | None = None  # a discontinuity before the next sample
        self.closed = False

    def _segment(self, start: int, datetime_utc: str | None = None) -> dict[str, Any]:
        seg: dict[str, Any] = {"core:sample_start": int(start)}
        if self.center_freq_hz is not None:
            seg["core:frequency"] = self.center_freq_hz
        if datetime_utc is not None:
            seg["core:datetime"] = datetime_utc
        return seg

    def write(self, block: np.ndarray, datetime_utc: str | None = None) -> None:
        """Append ``block`` (complex (n,), or native (n, 2) / (2n,) components);
        ``datetime_utc`` (ISO 8601): when its first sample arrived, kept as the
        ``core:datetime`` of the segment it starts (the first, or one after a
        discontinuity)."""
        if self.closed:
            raise ValueError(f"{self.data_path}: write to a closed recording")
        disk = _to_disk_array(block, self.datatype)
        n = disk.size // 2
        if n == 0:
            return
        if self.n_samples == 0 and datetime_utc is not None:
            self.captures[0].setdefault("core:datetime", datetime_utc)
        if self._pending is not None:  # (only ever set after a sample)
            seg = self._segment(self.n_samples, datetime_utc)
            seg[DISCONTINUITY_KEY] = self._pending
            self.captures.append(seg)
            self._pending = None
        self._f.write(disk.tobytes())
        self.n_samples += n

    def mark_discontinuity(self, why: str) -> None:
        """The next sample does not follow the last one written (``why``: what happened)."""
        if self.n_samples > 0:
            self._pending = str(why)

    def close(self) -> tuple[Path, Path]:
        """Finish the recording: (meta_path, data_path). Idempotent."""
        if not self.closed:
            self.closed = True
            try:
                self._f.flush()
                os.fsync(self._f.fileno())
            finally:
                self._f.close()
            os.replace(self._tmp, self.data_path)
            doc = {"global": self.glob, "captures": self.captures, "annotations": []}
            meta = _meta_bytes(self.meta_path, doc)
            _atomic_write_bytes(self.meta_path, lambda f: f.write(meta))
        return self.meta_path, self.data_path

    def abort(self) -> None:
        """Remove what was written (nothing is left on disk)."""
        if not self.closed:
            self.closed = True
            self._f.close()
            try:
                os.unlink(self._tmp)
            except OSError:
                pass

    def __enter__(self) -> "SigMFWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def append_annotations(meta_path: str | os.PathLike, annotations: list[dict]) -> None:
    """Add annotations to an existing SigMF recording's metadata, atomically.

    The merged list is re-sorted by ``core:sample_start`` (stable: existing
    annotations precede new ones with the same start); every other key in the
    file is kept. The new file is written to a temporary file in the same
    directory and moved into place with ``os.replace``, so readers never see
    a partial file. Concurrent appenders are not serialised (last one wins).

    Parameters
    ----------
    meta_path : str or os.PathLike
        ``X.sigmf-meta``, ``X.sigmf-data`` or base ``X``.
    annotations : list of dict
        SigMF annotation objects (``core:sample_start`` required).

    Raises
    ------
    IQMissingFileError, IQMetadataError
        Missing or malformed metadata file, or invalid new annotations.
    """
    mpath, _ = sigmf_paths(meta_path)
    doc = _load_meta_json(mpath)
    existing = _validate_annotations(doc.get("annotations", []), mpath)
    new = _validate_annotations(list(annotations), mpath)
    doc["annotations"] = _sorted_annotations(existing + new)
    meta_bytes = _meta_bytes(mpath, doc)
    _atomic_write_bytes(mpath, lambda f: f.write(meta_bytes))
