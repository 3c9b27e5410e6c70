"""The record batch codecs, in the framings Kafka clients write and read."""

from __future__ import annotations

import enum
import gzip
import io
import struct
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


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    try:
        match codec:
            case Codec.NONE:
                return bytes(data)
            case Codec.GZIP:
                return gzip.decompress(data)
            case Codec.SNAPPY:
                return _snappy_decompress(bytes(data))
            case Codec.LZ4:
                return bytes(cramjam.lz4.decompress(data))
            case Codec.ZSTD:
                # Producers stream frames without a content size, and may write several.
                with _zstd_decompressor.stream_reader(io.BytesIO(bytes(data)), read_across_frames=True) as reader:
                    return reader.read()
    except (OSError, EOFError, zlib.error, cramjam.DecompressionError, zstandard.ZstdError) as e:
        raise CompressionError(f"cannot decompress {Codec(codec).name}: {e}") from e
    raise CompressionError(f"unknown compression codec {codec}")


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


def _snappy_decompress(data: bytes) -> bytes:
    if not data.startswith(_XERIAL_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))
    out = []
    pos = len(_XERIAL_HEADER)
    while pos < len(data):
        if pos + 4 > len(data):
            raise CompressionError("truncated snappy block")
        (size,) = struct.unpack_from(">i", data, pos)
        pos += 4
        if size < 0 or pos + size > len(data):
            raise CompressionError("truncated snappy block")
        out.append(bytes(cramjam.snappy.decompress_raw(data[pos : pos + size])))
        pos += size
    return b"".join(out)
