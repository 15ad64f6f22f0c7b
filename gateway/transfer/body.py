"""A PATCH body on its way to staging: spooled to an anonymous file before any lock is taken.

The body is read to its end before the upload's row is locked, so a slow link never holds a database
connection or a lock; the gateway's memory stays flat whatever the chunk size, because the body goes to
disk in blocks. Gathering the network's small pieces into 1 MiB blocks keeps the system calls few: this is
the hot path of every upload (bench/upload_throughput.py).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from typing import BinaryIO

from starlette.requests import Request

from gateway.files import write_all
from gateway.storage.staging import ChunkTooLarge

SPOOL_BLOCK = 1024 * 1024


@contextlib.asynccontextmanager
async def spooled_body(request: Request, limit: int) -> AsyncIterator[BinaryIO]:
    """The request body in an unbuffered temporary file, positioned at its start; removed on the way out.

    ChunkTooLarge as soon as more than `limit` bytes arrive (nothing more is read or written).
    """
    with tempfile.TemporaryFile(buffering=0) as spool:
        block = bytearray()
        received = 0
        async for piece in request.stream():
            received += len(piece)
            if received > limit:
                raise ChunkTooLarge(f"one request may carry at most {limit} bytes")
            block += piece
            if len(block) >= SPOOL_BLOCK:
                write_all(spool.fileno(), block)
                block.clear()
        write_all(spool.fileno(), block)
        spool.seek(0)
        yield spool  # type: ignore[misc]
