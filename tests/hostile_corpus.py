"""A generated corpus of hostile and unusual image uploads, each with the answer the service documents for it.

Every file is made in memory with Pillow, zlib and struct when a test first asks for it; nothing binary
is committed. An upload either is refused with a fixed status and code on every image route
(`Refused`), or is a valid image without a face (`Decodes`), whose answer depends on the route:
/detect and /identify answer 200 with no faces, /enroll and /verify answer 422 NO_FACE_DETECTED.
`Decodes` also says the width and height /detect reports, i.e. after EXIF orientation.

Used by tests/api/test_hostile_uploads.py and benchmarks/upload_memory.py.
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from app.config import Settings

ORIENTATION_TAG = 0x0112
DEFAULT_MAX_IMAGE_BYTES = int(Settings.model_fields["max_image_bytes"].default)  # 8 MiB
REAL_BOMB_SIDE = 12_000  # 144 megapixels: 576 MB once decoded into Pillow's 4-byte RGB pixels


@dataclass(frozen=True)
class Refused:
    """The same error on every image route."""

    status: int
    code: str


@dataclass(frozen=True)
class Decodes:
    """A valid image without a face, width x height as /detect reports it (after EXIF orientation)."""

    width: int
    height: int


EMPTY_FILE = Refused(400, "EMPTY_FILE")
INVALID_IMAGE = Refused(400, "INVALID_IMAGE")
IMAGE_TOO_BIG_IN_BYTES = Refused(413, "PAYLOAD_TOO_LARGE")
UNSUPPORTED = Refused(415, "UNSUPPORTED_MEDIA_TYPE")
IMAGE_TOO_LARGE = Refused(422, "IMAGE_TOO_LARGE")
IMAGE_TOO_SMALL = Refused(422, "IMAGE_TOO_SMALL")


@dataclass(frozen=True)
class HostileUpload:
    name: str
    why: str
    build: Callable[[], bytes]
    expected: Refused | Decodes
    # What the client claims; the service must decide by the bytes alone.
    filename: str = "photo.jpg"
    content_type: str = "image/jpeg"
    # A bomb: refusing it must cost no pixel memory (the benchmark measures these).
    bomb: bool = False

    @property
    def data(self) -> bytes:
        return self.build()


# --- builders --------------------------------------------------------------------------------------


def encode(image: Image.Image, image_format: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def gradient(*, width: int = 64, height: int = 48) -> Image.Image:
    """A smooth colour ramp: a valid picture in which no detector finds a face."""
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :].repeat(height, axis=0)
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None].repeat(width, axis=1)
    array = np.stack([x, y, 255 - (x + y) / 2], axis=-1).astype(np.uint8)
    return Image.fromarray(array, mode="RGB")


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_claiming(*, width: int, height: int, idat: bool = True) -> bytes:
    """A tiny, well-formed PNG whose header claims width x height 8-bit RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) if idat else b""
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + body + png_chunk(b"IEND", b"")


def jpeg_claiming(*, width: int, height: int) -> bytes:
    """A real baseline JPEG with its SOF0 size fields rewritten."""
    data = bytearray(encode(gradient(width=16, height=16), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_claiming(*, width: int, height: int) -> bytes:
    """A WEBP container whose VP8X header claims a width x height canvas, and nothing else."""
    vp8x = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def deflated_zeros(*, block_size: int, blocks: int) -> bytes:
    """A valid zlib stream of block_size * blocks zero bytes, made without deflating them all.

    Deflating hundreds of MB takes seconds, so one block is deflated after a full flush (which makes
    it independent of what came before) and repeated; the Adler-32 still covers every byte.
    """
    block = bytes(block_size)
    compressor = zlib.compressobj(9)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)  # begins with the zlib header
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(blocks):
        checksum = zlib.adler32(block, checksum)
    final_empty_block = b"\x03\x00"
    return first + repeated * (blocks - 1) + final_empty_block + struct.pack(">I", checksum)


@functools.cache
def real_png_bomb() -> bytes:
    """A complete, valid 12000 x 12000 black RGB PNG (~420 KB; 576 MB once decoded)."""
    side, rows_per_block = REAL_BOMB_SIDE, 100
    # A black row is its filter byte 0 and 3 zero bytes per pixel: the pixel data is all zeros.
    idat = deflated_zeros(block_size=(1 + side * 3) * rows_per_block, blocks=side // rows_per_block)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_span(data: bytes, kind: bytes) -> tuple[int, int]:
    """Offsets (start, end) of the payload of the first `kind` chunk."""
    start = data.index(kind) + 4
    (length,) = struct.unpack(">I", data[start - 8 : start - 4])
    return start, start + length


def flip_byte(data: bytes, offset: int) -> bytes:
    mutable = bytearray(data)
    mutable[offset] ^= 0xFF
    return bytes(mutable)


def _png() -> bytes:
    return encode(gradient(), "PNG")


def _jpeg() -> bytes:
    return encode(gradient(), "JPEG", quality=90)


def _webp() -> bytes:
    return encode(gradient(), "WEBP")


def _png_with_chunk_before_idat(kind: bytes, payload: bytes) -> bytes:
    data = _png()
    idat = data.index(b"IDAT") - 4
    return data[:idat] + png_chunk(kind, payload) + data[idat:]


@functools.cache
def _deflated_zeros() -> bytes:
    return deflated_zeros(block_size=1 << 20, blocks=64)


def _png_text_bomb() -> bytes:
    """A zTXt comment that inflates to 64 MiB (Pillow stops inflating text chunks at 1 MiB)."""
    return _png_with_chunk_before_idat(b"zTXt", b"Comment\x00\x00" + _deflated_zeros())


def _png_icc_bomb() -> bytes:
    """An iCCP colour profile that inflates to 64 MiB."""
    return _png_with_chunk_before_idat(b"iCCP", b"icc\x00\x00" + _deflated_zeros())


def _png_padded_past_byte_cap() -> bytes:
    """A valid PNG followed by enough zeros to pass the 8 MiB image cap (the request stays under 17 MiB)."""
    return _png() + bytes(DEFAULT_MAX_IMAGE_BYTES)


def _jpeg_cut_in_half() -> bytes:
    data = _jpeg()
    return data[: len(data) // 2]


def _jpeg_header_only() -> bytes:
    """Every JPEG segment up to and including the start-of-scan header, and no entropy-coded data."""
    data = _jpeg()
    sos = data.index(b"\xff\xda")
    (length,) = struct.unpack(">H", data[sos + 2 : sos + 4])
    return data[: sos + 2 + length]


def _png_truncated_in_idat() -> bytes:
    data = _png()
    start, end = png_span(data, b"IDAT")
    return data[: (start + end) // 2]


def _png_bad_ihdr_crc() -> bytes:
    data = _png()
    _, end = png_span(data, b"IHDR")
    return flip_byte(data, end)


def _png_bad_idat_crc() -> bytes:
    data = _png()
    _, end = png_span(data, b"IDAT")
    return flip_byte(data, end)


def _webp_cut_in_half() -> bytes:
    data = _webp()
    return data[: len(data) // 2]


def _zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("payload/run.sh", "#!/bin/sh\necho pwned\n" * 20)
    return buffer.getvalue()


def _random_bytes() -> bytes:
    data = np.random.default_rng(2024).integers(0, 256, size=4096, dtype=np.uint8).tobytes()
    return b"\x00" + data  # a zero first byte begins none of the accepted signatures


SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48">'
    b'<rect width="64" height="48" fill="red"/></svg>\n'
)
SVG_WITH_ENTITIES_AND_SCRIPT = (
    b'<?xml version="1.0"?>\n<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><text>&b;&xxe;</text>'
    b"<script>fetch('http://attacker.invalid/')</script></svg>\n"
)
PDF = (
    b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>\n"
    b"endobj\n"
)
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 48\nnewpath 0 0 moveto 64 48 lineto stroke\n%%EOF\n"
# A DOS EPS binary header (magic C5D0D3C6, then offsets) in front of a PostScript section.
EPS_DOS_BINARY = b"\xc5\xd0\xd3\xc6" + struct.pack("<IIIIII", 30, len(EPS), 0, 0, 0, 0) + b"\xff\xff" + EPS
HEIC = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic" + b"\x00" * 64
AVIF = struct.pack(">I", 24) + b"ftypavif" + b"\x00\x00\x00\x00" + b"mif1avif" + b"\x00" * 64


def _animated_gif() -> bytes:
    frames = [Image.new("P", (64, 48), index) for index in range(10)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=20)


def _png_16_bit_rgb() -> bytes:
    """48-bit RGB (Pillow cannot write it, so the PNG is assembled by hand)."""
    height, width = 48, 64
    values = (np.arange(height * width * 3).reshape(height, width, 3) * 97 % 65536).astype(">u2")
    raw = b"".join(b"\x00" + values[row].tobytes() for row in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")


def _png_16_bit_gray() -> bytes:
    values = (np.arange(48 * 64) * 21).astype("<u2")
    return encode(Image.frombytes("I;16", (64, 48), values.tobytes()), "PNG")


def _png_palette(*, transparent: bool) -> bytes:
    image = gradient().convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return encode(image, "PNG", transparency=0) if transparent else encode(image, "PNG")


@functools.cache
def _animated_webp() -> bytes:
    """1000 frames of 64 x 48; only the first is decoded."""
    frames = [Image.new("RGB", (64, 48), (index % 256, (index * 7) % 256, 90)) for index in range(1000)]
    return encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=10, lossless=True)


def _apng() -> bytes:
    frames = [Image.new("RGB", (64, 48), (index * 2, 40, 90)) for index in range(100)]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=10)


def _jpeg_with_exif(exif: bytes) -> bytes:
    return encode(gradient(), "JPEG", quality=90, exif=exif)


def _orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = value
    return exif.tobytes()


TIFF_LE = b"II*\x00" + struct.pack("<I", 8)


def _tiff_ifd(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """A little-endian TIFF IFD; each entry is (tag, type, count, 4-byte value or offset)."""
    body = struct.pack("<H", len(entries))
    for tag, field_type, count, value in entries:
        body += struct.pack("<HHI", tag, field_type, count) + value
    return body + struct.pack("<I", 0)


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data


# --- the corpus ------------------------------------------------------------------------------------

PLAIN = Decodes(64, 48)
TURNED = Decodes(48, 64)  # EXIF orientations 5-8 swap width and height

CORPUS: tuple[HostileUpload, ...] = (
    # Decompression bombs: refused from the header, before any pixel is allocated.
    HostileUpload(
        "png-header-65535-square",
        "tiny PNG whose header claims 65535 x 65535",
        lambda: png_claiming(width=65_535, height=65_535),
        IMAGE_TOO_LARGE,
        bomb=True,
    ),
    HostileUpload(
        "png-header-largest-legal",
        "tiny PNG claiming (2^31-1) x (2^31-1), the largest the format allows",
        lambda: png_claiming(width=2**31 - 1, height=2**31 - 1),
        IMAGE_TOO_LARGE,
        bomb=True,
    ),
    HostileUpload(
        "png-header-just-over-40mp-no-pixels",
        "8000 x 5001 (one row over 40 MP) with no pixel data at all: only the header can decide",
        lambda: png_claiming(width=8_000, height=5_001, idat=False),
        IMAGE_TOO_LARGE,
        bomb=True,
    ),
    HostileUpload(
        "jpeg-header-65000-square",
        "real JPEG whose SOF claims 65000 x 65000",
        lambda: jpeg_claiming(width=65_000, height=65_000),
        IMAGE_TOO_LARGE,
        bomb=True,
    ),
    HostileUpload(
        "webp-header-16383-square",
        "WEBP VP8X header claiming a 16383 x 16383 canvas",
        lambda: webp_claiming(width=16_383, height=16_383),
        IMAGE_TOO_LARGE,
        bomb=True,
    ),
    HostileUpload(
        "png-real-12000-square",
        "a complete, valid 12000 x 12000 PNG (~420 KB; 576 MB decoded)",
        real_png_bomb,
        IMAGE_TOO_LARGE,
        filename="big.png",
        content_type="image/png",
        bomb=True,
    ),
    HostileUpload(
        "png-ztxt-64mib-bomb",
        "zTXt comment inflating to 64 MiB; Pillow refuses text chunks over 1 MiB",
        _png_text_bomb,
        INVALID_IMAGE,
        bomb=True,
    ),
    HostileUpload(
        "png-iccp-64mib-bomb",
        "iCCP profile inflating to 64 MiB",
        _png_icc_bomb,
        INVALID_IMAGE,
        bomb=True,
    ),
    HostileUpload(
        "png-padded-past-8mib",
        "valid PNG plus 8 MiB of trailing zeros: over the image byte cap, under the request cap",
        _png_padded_past_byte_cap,
        IMAGE_TOO_BIG_IN_BYTES,
    ),
    # Truncated and corrupt files of an accepted format.
    HostileUpload("jpeg-cut-in-half", "first half of a JPEG", _jpeg_cut_in_half, INVALID_IMAGE),
    HostileUpload("jpeg-header-only", "JPEG segments up to SOS, no scan data", _jpeg_header_only, INVALID_IMAGE),
    HostileUpload("jpeg-magic-only", "FF D8 FF and nothing else", _constant(b"\xff\xd8\xff"), INVALID_IMAGE),
    HostileUpload(
        "jpeg-magic-then-html",
        "JPEG magic followed by an HTML page",
        _constant(b"\xff\xd8\xff<html><script>alert(1)</script></html>"),
        INVALID_IMAGE,
    ),
    HostileUpload(
        "jpeg-zero-size", "JPEG whose SOF says 0 x 0", lambda: jpeg_claiming(width=0, height=0), INVALID_IMAGE
    ),
    HostileUpload(
        "png-signature-only", "8-byte PNG signature", _constant(PNG_SIGNATURE), INVALID_IMAGE, filename="a.png"
    ),
    HostileUpload("png-truncated-in-idat", "PNG cut inside its pixel data", _png_truncated_in_idat, INVALID_IMAGE),
    HostileUpload("png-bad-ihdr-crc", "PNG whose IHDR checksum is wrong", _png_bad_ihdr_crc, INVALID_IMAGE),
    HostileUpload(
        "png-bad-idat-crc",
        "wrong IDAT chunk CRC over intact pixel data: Pillow does not check it and zlib's own checksum holds",
        _png_bad_idat_crc,
        PLAIN,
    ),
    HostileUpload("png-zero-size", "PNG whose IHDR says 0 x 0", lambda: png_claiming(width=0, height=0), INVALID_IMAGE),
    HostileUpload("webp-cut-in-half", "first half of a WEBP", _webp_cut_in_half, INVALID_IMAGE),
    HostileUpload(
        "webp-riff-header-only", "RIFF....WEBP and nothing else", _constant(b"RIFF\x04\x00\x00\x00WEBP"), INVALID_IMAGE
    ),
    # Not an image at all, whatever the name says.
    HostileUpload("zero-bytes", "an empty file", _constant(b""), EMPTY_FILE),
    HostileUpload("random-bytes", "4 KiB of seeded random bytes", _random_bytes, UNSUPPORTED),
    HostileUpload(
        "text-named-jpg", "a CSV text file named .jpg", _constant(b"name,photo\nAl Gore,1.jpg\n"), UNSUPPORTED
    ),
    HostileUpload(
        "zip-then-jpeg",
        "ZIP archive with a JPEG appended: starts as a ZIP",
        lambda: _zip_archive() + _jpeg(),
        UNSUPPORTED,
    ),
    HostileUpload(
        "jpeg-zip-polyglot",
        "valid JPEG with a ZIP archive appended (a JPEG+ZIP polyglot): decoded as the JPEG it starts with",
        lambda: _jpeg() + _zip_archive(),
        PLAIN,
    ),
    HostileUpload("svg", "an SVG drawing", _constant(SVG), UNSUPPORTED, filename="a.svg", content_type="image/svg+xml"),
    HostileUpload(
        "svg-entities-xxe-script",
        "SVG with an entity expansion, an external entity and a script, named .png",
        _constant(SVG_WITH_ENTITIES_AND_SCRIPT),
        UNSUPPORTED,
        filename="a.png",
        content_type="image/png",
    ),
    HostileUpload(
        "pdf", "a PDF with an OpenAction script", _constant(PDF), UNSUPPORTED, content_type="application/pdf"
    ),
    HostileUpload("eps", "Encapsulated PostScript", _constant(EPS), UNSUPPORTED),
    HostileUpload("eps-dos-binary", "EPS with the DOS binary header", _constant(EPS_DOS_BINARY), UNSUPPORTED),
    HostileUpload("tiff", "a valid TIFF", lambda: encode(gradient(), "TIFF"), UNSUPPORTED, content_type="image/tiff"),
    HostileUpload("bmp", "a valid BMP", lambda: encode(gradient(), "BMP"), UNSUPPORTED, content_type="image/bmp"),
    HostileUpload("gif-animated", "a 10-frame GIF", _animated_gif, UNSUPPORTED, content_type="image/gif"),
    HostileUpload("ico", "a Windows icon", lambda: encode(gradient(width=32, height=32), "ICO"), UNSUPPORTED),
    HostileUpload("heic-stub", "an ISO-BMFF ftyp box of brand heic", _constant(HEIC), UNSUPPORTED),
    HostileUpload("avif-stub", "an ISO-BMFF ftyp box of brand avif", _constant(AVIF), UNSUPPORTED),
    # Sizes at and under the minimum side (32 px).
    HostileUpload("png-1x1", "a single pixel", lambda: encode(Image.new("RGB", (1, 1)), "PNG"), IMAGE_TOO_SMALL),
    HostileUpload(
        "jpeg-31x400", "one side a pixel short", lambda: encode(gradient(width=31, height=400), "JPEG"), IMAGE_TOO_SMALL
    ),
    HostileUpload(
        "jpeg-32x32", "exactly the minimum side", lambda: encode(gradient(width=32, height=32), "JPEG"), Decodes(32, 32)
    ),
    # Unusual but valid pixel formats.
    HostileUpload("png-16-bit-gray", "16-bit grayscale PNG", _png_16_bit_gray, PLAIN),
    HostileUpload("png-16-bit-rgb", "48-bit RGB PNG", _png_16_bit_rgb, PLAIN),
    HostileUpload("png-palette", "64-colour palette PNG", lambda: _png_palette(transparent=False), PLAIN),
    HostileUpload(
        "png-palette-transparent", "palette PNG with a transparent index", lambda: _png_palette(transparent=True), PLAIN
    ),
    HostileUpload(
        "png-fully-transparent",
        "RGBA PNG whose every pixel is transparent",
        lambda: encode(Image.new("RGBA", (64, 48), (0, 0, 0, 0)), "PNG"),
        PLAIN,
    ),
    HostileUpload("png-gray-alpha", "LA PNG", lambda: encode(gradient().convert("L").convert("LA"), "PNG"), PLAIN),
    HostileUpload("jpeg-cmyk", "CMYK JPEG", lambda: encode(gradient().convert("CMYK"), "JPEG"), PLAIN),
    HostileUpload("jpeg-progressive", "progressive JPEG", lambda: encode(gradient(), "JPEG", progressive=True), PLAIN),
    HostileUpload(
        "webp-animated-1000-frames", "animated WEBP of 1000 frames: the first one is used", _animated_webp, PLAIN
    ),
    HostileUpload("apng-100-frames", "animated PNG of 100 frames: the first one is used", _apng, PLAIN),
    # EXIF orientation, valid, out of range and malformed.
    *(
        HostileUpload(
            f"jpeg-exif-orientation-{value}",
            f"EXIF orientation {value}",
            functools.partial(_jpeg_with_exif, _orientation(value)),
            TURNED if value >= 5 else PLAIN,
        )
        for value in range(1, 9)
    ),
    *(
        HostileUpload(
            f"jpeg-exif-orientation-{value}-invalid",
            f"EXIF orientation {value}, outside 1-8: ignored",
            functools.partial(_jpeg_with_exif, _orientation(value)),
            PLAIN,
        )
        for value in (0, 9, 65535)
    ),
    HostileUpload(
        "jpeg-exif-garbage",
        "APP1 Exif segment holding no TIFF structure",
        functools.partial(_jpeg_with_exif, b"Exif\x00\x00this is not a TIFF header"),
        PLAIN,
    ),
    HostileUpload(
        "jpeg-exif-ifd-offset-past-end",
        "EXIF whose first IFD offset points 4 GB past the end",
        functools.partial(_jpeg_with_exif, b"Exif\x00\x00II*\x00" + struct.pack("<I", 0xFFFF_FFF0)),
        PLAIN,
    ),
    HostileUpload(
        "jpeg-exif-orientation-as-text",
        "EXIF orientation stored as ASCII 'six'",
        functools.partial(
            _jpeg_with_exif, b"Exif\x00\x00" + TIFF_LE + _tiff_ifd([(ORIENTATION_TAG, 2, 4, b"six\x00")])
        ),
        PLAIN,
    ),
    HostileUpload(
        "png-exif-orientation-6",
        "PNG eXIf chunk with orientation 6",
        lambda: encode(gradient(), "PNG", exif=_orientation(6)),
        TURNED,
        filename="a.png",
        content_type="image/png",
    ),
)

BOMBS: tuple[HostileUpload, ...] = tuple(upload for upload in CORPUS if upload.bomb)
