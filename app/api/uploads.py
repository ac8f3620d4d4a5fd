"""Reading uploaded files into memory, never past the per-image byte cap."""

from __future__ import annotations

from fastapi import UploadFile

from app.errors import PayloadTooLargeError


async def read_image(upload: UploadFile, *, max_bytes: int) -> bytes:
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"The image {upload.filename or ''} is over {max_bytes} bytes.".replace("  ", " "),
            details={"max_bytes": max_bytes},
        )
    return data
