"""The record batch codecs, in the framings Kafka clients write and read."""

from __future__ import annotations

import enum
import gzip
import io
import struct
import sys
import threading
import zlib

import cramjam
import zstandard


class Codec(enum.IntEnum):
    # Bits 0-2 of a record batch's attributes.
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4

    @classmethod
    def from_name(cls, name: str) -> Codec:
        return cls.NONE if name in ("none", "uncompressed") else cls[name.upper()]


class CompressionError(ValueError):
    pass


# Snappy as the Java client writes it: xerial's stream framing, 32 KiB blocks.
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024

_zstd_decompressor = zstandard.ZstdDecompressor()
_GZIP_WBITS = 16 + zlib.MAX_WBITS
# An LZ4 frame says nothing reliable about its decompressed size: output buffers start at
# this many times the input and grow, so that a small batch does not cost a large buffer.
_LZ4_FIRST_RATIO = 8
_ZSTD_PIECE = 256 * 1024
# Bounds up to this inflate LZ4 into a buffer kept per thread (see _lz4_decompress).
_LZ4_KEPT_BUFFER_MAX = 16 * 1024 * 1024
_lz4_output = threading.local()


class DecompressedTooLarge(CompressionError):
    """A batch that inflates past the bound its reader set: a decompression bomb or a
    batch larger than the topic allows."""


def decompress(codec: int, data: bytes | memoryview, max_size: int | None = None) -> bytes:
    """The batch's records section decompressed. With max_size, inflating stops as soon
    as the output passes it (DecompressedTooLarge), so neither memory nor time is spent
    on more than max_size bytes whatever the input claims; without it, only for data the
    broker wrote itself."""
    limit = sys.maxsize - 1 if max_size is None else max_size  # limit + 1 still fits a C ssize_t
    try:
        match codec:
            case Codec.NONE:
                return bytes(data)
            case Codec.GZIP:
                return _gzip_decompress(data, limit)
            case Codec.SNAPPY:
                return _snappy_decompress(bytes(data), limit)
            case Codec.LZ4:
                return _lz4_decompress(data, limit)
            case Codec.ZSTD:
                return _zstd_decompress(data, limit)
    except (OSError, EOFError, zlib.error, cramjam.DecompressionError, zstandard.ZstdError) as e:
        raise CompressionError(f"cannot decompress {Codec(codec).name}: {e}") from e
    raise CompressionError(f"unknown compression codec {codec}")


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise DecompressedTooLarge(f"the batch decompresses to more than {limit} bytes")


def _zstd_decompress(data: bytes | memoryview, limit: int) -> bytes:
    # Producers stream frames without a content size, and may write several. Read in
    # pieces: one read of limit + 1 bytes would allocate (and page in) a buffer of
    # max.message.bytes for every batch, several times the cost of inflating a usual one.
    pieces = []
    size = 0
    with _zstd_decompressor.stream_reader(io.BytesIO(bytes(data)), read_across_frames=True) as reader:
        while piece := reader.read(min(_ZSTD_PIECE, limit + 1 - size)):
            pieces.append(piece)
            size += len(piece)
            _check_size(size, limit)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _gzip_decompress(data: bytes | memoryview, limit: int) -> bytes:
    # A gzip stream may hold several members, which Kafka's reader (and gzip.decompress)
    # read one after the other.
    out = bytearray()
    rest: bytes | memoryview = data
    while rest:
        member = zlib.decompressobj(_GZIP_WBITS)
        out += member.decompress(rest, limit + 1 - len(out))
        _check_size(len(out), limit)
        if not member.eof:
            raise EOFError("gzip stream ends before its member does")
        rest = member.unused_data
    return bytes(out)


def _lz4_decompress(data: bytes | memoryview, limit: int) -> bytes:
    if limit < _LZ4_KEPT_BUFFER_MAX:
        # cramjam inflates the whole frame whatever the buffer, so a buffer that turns out
        # too small costs a whole inflation: with every batch a client sends opened, one
        # buffer of the bound per thread, kept, costs least.
        buffer = getattr(_lz4_output, "buffer", None)
        if buffer is None or len(buffer) < limit + 1:
            buffer = _lz4_output.buffer = bytearray(limit + 1)
        view = memoryview(buffer)[: limit + 1]
        try:
            written = cramjam.lz4.decompress_into(data, view)
        except cramjam.DecompressionError as e:
            if "whole buffer" not in str(e):
                raise
            raise DecompressedTooLarge(f"the batch decompresses to more than {limit} bytes") from e
        _check_size(written, limit)
        return bytes(view[:written])
    size = min(limit + 1, max(len(data) * _LZ4_FIRST_RATIO, 64 * 1024))
    while True:
        buffer = bytearray(size)
        try:
            written = cramjam.lz4.decompress_into(data, buffer)
        except cramjam.DecompressionError as e:
            # The only sign cramjam gives of an output buffer too small.
            if "whole buffer" not in str(e):
                raise
            _check_size(size, limit)
            size = min(limit + 1, size * 4)
            continue
        _check_size(written, limit)
        return bytes(buffer[:written])


def compress(codec: int, data: bytes, level: int | None = None) -> bytes:
    match codec:
        case Codec.NONE:
            return data
        case Codec.GZIP:
            # -1 is Deflater's default, level 6.
            return gzip.compress(data, compresslevel=6 if level in (None, -1) else level, mtime=0)
        case Codec.SNAPPY:
            blocks = [_XERIAL_HEADER]
            for i in range(0, len(data), _XERIAL_BLOCK):
                block = bytes(cramjam.snappy.compress_raw(data[i : i + _XERIAL_BLOCK]))
                blocks.append(struct.pack(">i", len(block)) + block)
            return b"".join(blocks)
        case Codec.LZ4:
            # Java's reader accepts only frames of independent blocks.
            compressor = cramjam.lz4.Compressor(level=level or 9, block_linked=False)
            compressor.compress(data)
            return bytes(compressor.finish())
        case Codec.ZSTD:
            return zstandard.ZstdCompressor(level=level if level is not None else 3).compress(data)
    raise CompressionError(f"unknown compression codec {codec}")


def _snappy_decompress(data: bytes, limit: int) -> bytes:
    if not data.startswith(_XERIAL_MAGIC):
        # A raw snappy block starts with its decompressed length, known before any work.
        _check_snappy_block(data, limit)
        return bytes(cramjam.snappy.decompress_raw(data))
    out = []
    total = 0
    pos = len(_XERIAL_HEADER)
    while pos < len(data):
        if pos + 4 > len(data):
            raise CompressionError("truncated snappy block")
        (size,) = struct.unpack_from(">i", data, pos)
        pos += 4
        if size < 0 or pos + size > len(data):
            raise CompressionError("truncated snappy block")
        block = data[pos : pos + size]
        total += _check_snappy_block(block, limit - total)
        out.append(bytes(cramjam.snappy.decompress_raw(block)))
        pos += size
    return b"".join(out)


def _check_snappy_block(block: bytes, limit: int) -> int:
    length = int(cramjam.snappy.decompress_raw_len(block))
    _check_size(length, limit)
    return length


# Kafka before 0.10 computed an LZ4 frame's header checksum over the frame's magic number
# as well as its descriptor (KAFKA-3160); message format v0 keeps that framing for good.
_LZ4_MAGIC = b"\x04\x22\x4d\x18"
_LZ4_CONTENT_SIZE_FLAG = 0x08
_LZ4_DICT_ID_FLAG = 0x01


def _lz4_descriptor_end(frame: bytes | bytearray | memoryview) -> int:
    """Where an LZ4 frame's header checksum byte is: after the magic, FLG, BD and the optional fields FLG announces."""
    if len(frame) < 7 or bytes(frame[:4]) != _LZ4_MAGIC:
        raise CompressionError("not an LZ4 frame")
    flg = frame[4]
    return 6 + (8 if flg & _LZ4_CONTENT_SIZE_FLAG else 0) + (4 if flg & _LZ4_DICT_ID_FLAG else 0)


def lz4_frame_from_magic_v0(frame: bytes | memoryview) -> bytes:
    """An LZ4 frame of message format v0 with its header checksum made right, whichever
    way its writer computed it: Kafka's reader ignored it for v0, and so does this."""
    end = _lz4_descriptor_end(frame)
    if len(frame) <= end:
        raise CompressionError("truncated LZ4 frame header")
    fixed = bytearray(frame)
    fixed[end] = (xxh32(fixed[4:end]) >> 8) & 0xFF
    return bytes(fixed)


def lz4_frame_for_magic_v0(frame: bytes) -> bytes:
    """An LZ4 frame with the header checksum message format v0 readers expect (over the magic too)."""
    end = _lz4_descriptor_end(frame)
    broken = bytearray(frame)
    broken[end] = (xxh32(broken[:end]) >> 8) & 0xFF
    return bytes(broken)


_PRIME32 = (2654435761, 2246822519, 3266489917, 668265263, 374761393)
_MASK32 = 0xFFFFFFFF


def _rotl32(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _MASK32


def xxh32(data: bytes | bytearray | memoryview, seed: int = 0) -> int:
    """XXH32, which LZ4 frames use for their checksums; here only ever over a few header bytes."""
    p1, p2, p3, p4, p5 = _PRIME32
    data = bytes(data)
    length, pos = len(data), 0
    if length >= 16:
        lanes = [(seed + p1 + p2) & _MASK32, (seed + p2) & _MASK32, seed & _MASK32, (seed - p1) & _MASK32]
        while pos + 16 <= length:
            for i in range(4):
                (word,) = struct.unpack_from("<I", data, pos + 4 * i)
                lanes[i] = (_rotl32((lanes[i] + word * p2) & _MASK32, 13) * p1) & _MASK32
            pos += 16
        h = (_rotl32(lanes[0], 1) + _rotl32(lanes[1], 7) + _rotl32(lanes[2], 12) + _rotl32(lanes[3], 18)) & _MASK32
    else:
        h = (seed + p5) & _MASK32
    h = (h + length) & _MASK32
    while pos + 4 <= length:
        (word,) = struct.unpack_from("<I", data, pos)
        h = (_rotl32((h + word * p3) & _MASK32, 17) * p4) & _MASK32
        pos += 4
    while pos < length:
        h = (_rotl32((h + data[pos] * p5) & _MASK32, 11) * p1) & _MASK32
        pos += 1
    h ^= h >> 15
    h = (h * p2) & _MASK32
    h ^= h >> 13
    h = (h * p3) & _MASK32
    return h ^ (h >> 16)
