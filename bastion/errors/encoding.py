"""Request body decoding with a hard bound on output size (decompression-bomb safe)."""

from __future__ import annotations

import zlib

import brotli

CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """The decoded body would exceed the limit (413)."""


class BadEncoding(ValueError):
    """The body cannot be decoded with its declared Content-Encoding (400)."""


def _zlib(data: bytes, wbits: int, limit: int) -> bytes:
    decoder = zlib.decompressobj(wbits)
    out: list[bytes] = []
    total = 0
    pending = data
    # Each round emits at most CHUNK bytes, so the loop ends after limit / CHUNK + 2 rounds.
    for _ in range(limit // CHUNK + 2):
        try:
            part = decoder.decompress(pending, CHUNK)
        except zlib.error as exc:
            raise BadEncoding(f"cannot decompress body: {exc}") from exc
        pending = decoder.unconsumed_tail
        total += len(part)
        if total > limit:
            raise BodyTooLarge(f"decompressed body is larger than {limit} bytes")
        out.append(part)
        if not part and not pending:
            break
    else:
        raise BodyTooLarge(f"decompressed body is larger than {limit} bytes")
    if not decoder.eof:
        raise BadEncoding("compressed body is truncated")
    return b"".join(out)


def _brotli(data: bytes, limit: int) -> bytes:
    decoder = brotli.Decompressor()
    out: list[bytes] = []
    total = 0
    feed = data
    try:
        for _ in range(limit // CHUNK + 2):
            part = decoder.process(feed, output_buffer_limit=CHUNK)
            feed = b""
            total += len(part)
            if total > limit:
                raise BodyTooLarge(f"decompressed body is larger than {limit} bytes")
            out.append(part)
            if decoder.is_finished() or (not part and decoder.can_accept_more_data()):
                break
        else:
            raise BodyTooLarge(f"decompressed body is larger than {limit} bytes")
    except brotli.error as exc:
        raise BadEncoding(f"cannot decompress body: {exc}") from exc
    if not decoder.is_finished():
        raise BadEncoding("compressed body is truncated")
    return b"".join(out)


def decode_body(data: bytes, content_encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate as zlib or raw, br, identity)."""
    encoding = content_encoding.strip().lower()
    if encoding in {"", "identity"}:
        if len(data) > limit:
            raise BodyTooLarge(f"body is larger than {limit} bytes")
        return data
    if encoding in {"gzip", "x-gzip"}:
        return _zlib(data, 16 + zlib.MAX_WBITS, limit)
    if encoding == "deflate":
        # RFC 9110 deflate is zlib-wrapped (first byte 0x78); some clients send raw deflate.
        wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
        return _zlib(data, zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS, limit)
    if encoding == "br":
        return _brotli(data, limit)
    raise BadEncoding(f"unsupported Content-Encoding {content_encoding!r}")
