"""app.services.images: untrusted bytes in, 8-bit RGB out, or the error the caller should see.

Every image here is made in memory with Pillow or numpy, or written byte by byte.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from app.engine.crops import downscale
from app.engine.decode import ImageLimits, decode_image, sniff_format, to_rgb
from app.errors import (
    EmptyFileError,
    FacerecError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from tests.hostile_corpus import encode, flip_byte, jpeg_claiming, png_claiming, png_span, webp_claiming

# min_side=1 so that tiny test images pass; the tests of each limit set their own.
LIMITS = ImageLimits(max_bytes=8 * 1024 * 1024, max_pixels=40_000_000, min_side=1)
ORIENTATION_TAG = 0x0112
WHITE = (255, 255, 255)

Pixels = npt.NDArray[np.uint8]


# --- builders ------------------------------------------------------------------------------------


def _noise(*, width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8), mode="RGB")


def _blocks(*, columns: int, rows: int, block: int) -> Image.Image:
    """A grid of flat, distinct colours: survives lossy codecs, and any flip or turn changes it."""
    rng = np.random.default_rng(7)
    colours = rng.integers(0, 256, size=(rows, columns, 3), dtype=np.uint8)
    array = np.repeat(np.repeat(colours, block, axis=0), block, axis=1)
    return Image.fromarray(array, mode="RGB")


def _pixels(image: Image.Image) -> Pixels:
    return np.asarray(image, dtype=np.uint8)


def _jpeg_header_only() -> bytes:
    """Every JPEG segment up to and including the start-of-scan header, and no entropy-coded data."""
    data = encode(_noise(width=64, height=48), "JPEG")
    sos = data.index(b"\xff\xda")
    (length,) = struct.unpack(">H", data[sos + 2 : sos + 4])
    return data[: sos + 2 + length]


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return exif


def _exif_oriented(pixels: Pixels, orientation: int) -> Pixels:
    """What a viewer shows for stored pixels tagged with an EXIF orientation (EXIF 2.32, 4.6.4 A)."""
    transforms: dict[int, Callable[[Pixels], Pixels]] = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1, :],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, k=1),
    }
    return transforms[orientation](pixels)


def _tiff_ifd(entries: list[tuple[int, int, int, bytes]], *, next_ifd: int = 0) -> bytes:
    """A little-endian TIFF IFD; each entry is (tag, type, count, 4-byte value or offset)."""
    body = struct.pack("<H", len(entries))
    for tag, field_type, count, value in entries:
        body += struct.pack("<HHI", tag, field_type, count) + value
    return body + struct.pack("<I", next_ifd)


TIFF_LE = b"II*\x00" + struct.pack("<I", 8)


# --- sniff_format --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "JPEG"),
        (b"\xff\xd8\xff\xdb", "JPEG"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "WEBP"),
    ],
    ids=["jpeg-jfif", "jpeg-raw", "png", "webp"],
)
def test_sniff_format_names_accepted_format_from_leading_bytes(prefix: bytes, expected: str) -> None:
    image_format = sniff_format(prefix)

    assert image_format == expected


@pytest.mark.parametrize(
    "prefix",
    [
        b"",
        b"\xff\xd8",
        b"\x89PNG\r\n",
        b"RIFF\x24\x00\x00\x00WEB",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        b"GIF89a",
        b"II*\x00",
        b"BM",
        b"JFIF",
        b"PNG",
    ],
    ids=[
        "empty",
        "jpeg-soi-only",
        "png-half-signature",
        "riff-short",
        "riff-wave",
        "gif",
        "tiff",
        "bmp",
        "jfif",
        "png",
    ],
)
def test_sniff_format_returns_none_for_anything_else(prefix: bytes) -> None:
    image_format = sniff_format(prefix)

    assert image_format is None


# --- accepted formats ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "params"),
    [("JPEG", {}), ("PNG", {}), ("WEBP", {}), ("WEBP", {"lossless": True})],
    ids=["jpeg", "png", "webp-lossy", "webp-lossless"],
)
def test_decode_accepted_format_returns_rgb_image_of_original_size(image_format: str, params: dict[str, Any]) -> None:
    data = encode(_noise(width=64, height=48), image_format, **params)

    image = decode_image(data, limits=LIMITS)

    assert image.mode == "RGB"
    assert image.size == (64, 48)


@pytest.mark.parametrize(
    ("image_format", "params"), [("PNG", {}), ("WEBP", {"lossless": True})], ids=["png", "webp-lossless"]
)
def test_decode_lossless_format_keeps_every_pixel(image_format: str, params: dict[str, Any]) -> None:
    original = _noise(width=64, height=48)
    data = encode(original, image_format, **params)

    image = decode_image(data, limits=LIMITS)

    assert np.array_equal(_pixels(image), _pixels(original))


@pytest.mark.parametrize("image_format", ["JPEG", "WEBP"])
def test_decode_lossy_format_keeps_colours_close(image_format: str) -> None:
    original = _blocks(columns=4, rows=3, block=16)
    data = encode(original, image_format, quality=95)

    image = decode_image(data, limits=LIMITS)

    difference = np.abs(_pixels(image).astype(np.int16) - _pixels(original).astype(np.int16))
    assert difference.mean() < 4


# --- rejected formats ----------------------------------------------------------------------------


def _random_bytes() -> bytes:
    data = np.random.default_rng(42).integers(0, 256, size=4096, dtype=np.uint8).tobytes()
    return b"\x00" + data  # a zero first byte can begin none of the accepted signatures


UNSUPPORTED: dict[str, bytes] = {
    "tiff": encode(_noise(width=40, height=40), "TIFF"),
    "bmp": encode(_noise(width=40, height=40), "BMP"),
    "gif": encode(_noise(width=40, height=40).convert("P"), "GIF"),
    "animated-gif": encode(
        Image.new("P", (40, 40), 1), "GIF", save_all=True, append_images=[Image.new("P", (40, 40), 2)]
    ),
    "ico": encode(_noise(width=32, height=32), "ICO"),
    "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 40 40\nnewpath 0 0 moveto 40 40 lineto stroke\n%%EOF\n",
    "pdf": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
    "svg": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
    b'<rect width="40" height="40" fill="red"/></svg>\n',
    "heic": struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic" + b"\x00" * 64,
    "avif": struct.pack(">I", 24) + b"ftypavif" + b"\x00\x00\x00\x00" + b"mif1avif" + b"\x00" * 64,
    "psd": b"8BPS\x00\x01" + b"\x00" * 64,
    "random": _random_bytes(),
    "text": b"name,photo\nAl Gore,1.jpg\n",
    "jpeg-after-whitespace": b" " + encode(_noise(width=40, height=40), "JPEG"),
}


@pytest.mark.parametrize("data", list(UNSUPPORTED.values()), ids=list(UNSUPPORTED))
def test_decode_rejects_other_formats_by_their_bytes(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        decode_image(data, limits=LIMITS)

    assert caught.value.details == {"accepted": ["JPEG", "PNG", "WEBP"]}


@pytest.mark.parametrize(
    ("signature", "body_format"),
    [(b"\x89PNG\r\n\x1a\n", "JPEG"), (b"\xff\xd8\xff", "PNG"), (b"RIFF\x00\x00\x00\x00WEBP", "PNG")],
    ids=["png-signature-jpeg-body", "jpeg-signature-png-body", "webp-signature-png-body"],
)
def test_decode_uses_only_the_decoder_of_the_sniffed_format(signature: bytes, body_format: str) -> None:
    data = signature + encode(_noise(width=40, height=40), body_format)

    with pytest.raises(InvalidImageError):
        decode_image(data, limits=LIMITS)


# --- byte limits ---------------------------------------------------------------------------------


def test_decode_rejects_zero_bytes_as_empty_file() -> None:
    with pytest.raises(EmptyFileError):
        decode_image(b"", limits=LIMITS)


def test_decode_rejects_more_than_max_bytes_before_sniffing() -> None:
    data = b"not even an image " * 100
    limits = ImageLimits(max_bytes=len(data) - 1, max_pixels=40_000_000, min_side=1)

    with pytest.raises(PayloadTooLargeError) as caught:
        decode_image(data, limits=limits)

    assert caught.value.details == {"bytes": len(data), "max_bytes": len(data) - 1}


def test_decode_accepts_exactly_max_bytes() -> None:
    data = encode(_noise(width=40, height=40), "PNG")
    limits = ImageLimits(max_bytes=len(data), max_pixels=40_000_000, min_side=1)

    image = decode_image(data, limits=limits)

    assert image.size == (40, 40)


# --- corrupt files -------------------------------------------------------------------------------


def _png_truncated_inside_idat() -> bytes:
    data = encode(_noise(width=64, height=48), "PNG")
    start, end = png_span(data, b"IDAT")
    return data[: (start + end) // 2]


def _png_with_corrupt_ihdr_crc() -> bytes:
    data = encode(_noise(width=64, height=48), "PNG")
    _, end = png_span(data, b"IHDR")
    return flip_byte(data, end)


def _png_with_corrupt_idat_data() -> bytes:
    data = encode(_noise(width=64, height=48), "PNG")
    start, end = png_span(data, b"IDAT")
    corrupt = flip_byte(data, (start + end) // 2)
    # Recompute the CRC so that only zlib's own checks can notice.
    crc = zlib.crc32(corrupt[start - 4 : end])
    return corrupt[:end] + struct.pack(">I", crc) + corrupt[end + 4 :]


def _png_with_corrupt_zlib_checksum() -> bytes:
    data = encode(_noise(width=64, height=48), "PNG")
    _, end = png_span(data, b"IDAT")
    return flip_byte(data, end - 1)


CORRUPT: dict[str, bytes] = {
    "jpeg-cut-in-half": (jpeg := encode(_noise(width=64, height=48), "JPEG"))[: len(jpeg) // 2],
    "jpeg-header-only": _jpeg_header_only(),
    "jpeg-magic-only": b"\xff\xd8\xff",
    "png-signature-only": b"\x89PNG\r\n\x1a\n",
    "png-truncated-idat": _png_truncated_inside_idat(),
    "png-corrupt-ihdr-crc": _png_with_corrupt_ihdr_crc(),
    "png-corrupt-idat-data": _png_with_corrupt_idat_data(),
    "png-corrupt-adler32": _png_with_corrupt_zlib_checksum(),
    "png-zero-width": png_claiming(width=0, height=10),
    "png-header-without-pixels": png_claiming(width=64, height=48, idat=False),
    "webp-cut-in-half": (webp := encode(_noise(width=64, height=48), "WEBP"))[: len(webp) // 2],
    "webp-header-only": webp[:30],
    "webp-lossless-cut-in-half": (lossless := encode(_noise(width=64, height=48), "WEBP", lossless=True))[
        : len(lossless) // 2
    ],
    "webp-riff-only": b"RIFF\x04\x00\x00\x00WEBP",
}


@pytest.mark.parametrize("data", list(CORRUPT.values()), ids=list(CORRUPT))
def test_decode_rejects_truncated_or_corrupt_image_as_invalid(data: bytes) -> None:
    with pytest.raises(InvalidImageError):
        decode_image(data, limits=LIMITS)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("image_format", "seed"), [(f, s) for f in ("JPEG", "PNG", "WEBP") for s in range(3)])
def test_decode_raises_only_service_errors_for_randomly_damaged_files(image_format: str, seed: int) -> None:
    original = encode(_noise(width=64, height=48), image_format, exif=_exif(6))
    generator = random.Random(seed)
    damaged: list[bytes] = []
    for _ in range(100):
        mutable = bytearray(original)
        for _ in range(generator.choice([1, 4, 16])):
            mutable[generator.randrange(len(mutable))] = generator.randrange(256)
        cut = generator.choice([len(mutable), generator.randrange(len(mutable))])
        damaged.append(bytes(mutable[:cut]))

    outcomes: list[str] = []
    for data in damaged:
        try:
            outcomes.append(decode_image(data, limits=LIMITS).mode)
        except FacerecError as error:
            outcomes.append(type(error).__name__)

    allowed = {"RGB", "InvalidImageError", "UnsupportedMediaTypeError", "ImageTooLargeError"}
    assert set(outcomes) <= allowed
    assert "InvalidImageError" in outcomes


# --- pixel limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height"),
    [(100_000, 100_000), (65_535, 65_535), (1, 2**31 - 1), (2**31 - 1, 1)],
    ids=["100k-square", "64k-square", "one-column", "one-row"],
)
def test_decode_rejects_png_header_claiming_a_decompression_bomb(width: int, height: int) -> None:
    data = png_claiming(width=width, height=height)

    with pytest.raises(ImageTooLargeError):
        decode_image(data, limits=LIMITS)


def test_decode_rejects_png_bomb_from_header_alone_without_decoding_pixels() -> None:
    # No IDAT at all: decoding any pixel would fail as INVALID_IMAGE, so TOO_LARGE shows the header decided.
    data = png_claiming(width=100_000, height=100_000, idat=False)

    with pytest.raises(ImageTooLargeError):
        decode_image(data, limits=LIMITS)


def test_decode_rejects_header_over_configured_max_pixels_without_decoding_pixels() -> None:
    data = png_claiming(width=2_000, height=1_000, idat=False)
    limits = ImageLimits(max_bytes=8 * 1024 * 1024, max_pixels=1_000_000, min_side=1)

    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(data, limits=limits)

    assert caught.value.details == {"width": 2_000, "height": 1_000, "max_pixels": 1_000_000}


def test_decode_rejects_pillows_bomb_warning_band_even_under_a_higher_configured_limit() -> None:
    # 10000 x 10000 lies between Pillow's warning and error thresholds (about 89M and 179M pixels).
    data = png_claiming(width=10_000, height=10_000)
    limits = ImageLimits(max_bytes=8 * 1024 * 1024, max_pixels=10**9, min_side=1)

    with pytest.raises(ImageTooLargeError):
        decode_image(data, limits=limits)


def test_decode_rejects_webp_header_claiming_largest_canvas() -> None:
    data = webp_claiming(width=16_383, height=16_383)

    with pytest.raises(ImageTooLargeError):
        decode_image(data, limits=LIMITS)


def test_decode_rejects_jpeg_header_claiming_a_decompression_bomb() -> None:
    data = jpeg_claiming(width=65_000, height=65_000)

    with pytest.raises(ImageTooLargeError):
        decode_image(data, limits=LIMITS)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_decode_rejects_real_image_one_pixel_over_max_pixels(image_format: str) -> None:
    data = encode(_noise(width=100, height=80), image_format)
    limits = ImageLimits(max_bytes=8 * 1024 * 1024, max_pixels=100 * 80 - 1, min_side=1)

    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(data, limits=limits)

    assert caught.value.details == {"width": 100, "height": 80, "max_pixels": 7_999}


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_decode_accepts_real_image_at_exactly_max_pixels(image_format: str) -> None:
    data = encode(_noise(width=100, height=80), image_format)
    limits = ImageLimits(max_bytes=8 * 1024 * 1024, max_pixels=100 * 80, min_side=1)

    image = decode_image(data, limits=limits)

    assert image.size == (100, 80)


@pytest.mark.parametrize(("width", "height"), [(10, 10), (100, 10), (10, 100), (31, 32)])
def test_decode_rejects_image_with_a_side_under_min_side(width: int, height: int) -> None:
    data = encode(_noise(width=width, height=height), "PNG")
    limits = ImageLimits(max_bytes=8 * 1024 * 1024, max_pixels=40_000_000, min_side=32)

    with pytest.raises(ImageTooSmallError) as caught:
        decode_image(data, limits=limits)

    assert caught.value.details == {"width": width, "height": height, "min_side": 32}


def test_decode_accepts_image_with_both_sides_exactly_min_side() -> None:
    data = encode(_noise(width=32, height=32), "PNG")
    limits = ImageLimits(max_bytes=8 * 1024 * 1024, max_pixels=40_000_000, min_side=32)

    image = decode_image(data, limits=limits)

    assert image.size == (32, 32)


# --- modes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_decode_grayscale_repeats_the_gray_level_in_every_channel(image_format: str) -> None:
    gray = np.tile(np.array([0, 64, 128, 255], dtype=np.uint8).repeat(16), (16, 1))
    data = encode(Image.fromarray(gray, mode="L"), image_format, quality=100)

    image = decode_image(data, limits=LIMITS)

    pixels = _pixels(image).astype(np.int16)
    assert image.mode == "RGB"
    assert np.array_equal(pixels[..., 0], pixels[..., 1])
    assert np.array_equal(pixels[..., 0], pixels[..., 2])
    assert np.abs(pixels[..., 0] - gray).max() <= 2


def test_decode_bilevel_png_becomes_black_and_white() -> None:
    bilevel = Image.new("1", (4, 2), 0)
    bilevel.putpixel((1, 0), 1)
    data = encode(bilevel, "PNG")

    image = decode_image(data, limits=LIMITS)

    pixels = _pixels(image)
    assert tuple(pixels[0, 0]) == (0, 0, 0)
    assert tuple(pixels[0, 1]) == WHITE


def _palette_image() -> Image.Image:
    palette = Image.new("P", (3, 1))
    palette.putpalette([200, 10, 10, 10, 200, 10, 10, 10, 200] + [0, 0, 0] * 253)
    for index in range(3):
        palette.putpixel((index, 0), index)
    return palette


def test_decode_palette_png_maps_indices_to_palette_colours() -> None:
    data = encode(_palette_image(), "PNG")

    image = decode_image(data, limits=LIMITS)

    assert _pixels(image).tolist() == [[[200, 10, 10], [10, 200, 10], [10, 10, 200]]]


def test_decode_palette_png_paints_the_transparent_index_white() -> None:
    data = encode(_palette_image(), "PNG", transparency=1)

    image = decode_image(data, limits=LIMITS)

    assert _pixels(image).tolist() == [[[200, 10, 10], [255, 255, 255], [10, 10, 200]]]


def test_decode_palette_png_with_per_index_alpha_blends_onto_white() -> None:
    data = encode(_palette_image(), "PNG", transparency=bytes([255, 0, 128]))

    image = decode_image(data, limits=LIMITS)

    pixels = _pixels(image).astype(np.int16)
    assert pixels[0, 0].tolist() == [200, 10, 10]
    assert pixels[0, 1].tolist() == [255, 255, 255]
    assert np.abs(pixels[0, 2] - np.array([132, 132, 227])).max() <= 2


def test_decode_gray_alpha_png_composites_onto_white() -> None:
    gray_alpha = np.array([[[60, 255], [60, 0], [60, 128]]], dtype=np.uint8)
    data = encode(Image.fromarray(gray_alpha, mode="LA"), "PNG")

    image = decode_image(data, limits=LIMITS)

    pixels = _pixels(image).astype(np.int16)
    assert pixels[0, 0].tolist() == [60, 60, 60]
    assert pixels[0, 1].tolist() == [255, 255, 255]
    assert np.abs(pixels[0, 2] - 158).max() <= 2


@pytest.mark.parametrize(
    ("image_format", "params"), [("PNG", {}), ("WEBP", {"lossless": True, "exact": True})], ids=["png", "webp"]
)
def test_decode_rgba_paints_transparent_pixels_white(image_format: str, params: dict[str, Any]) -> None:
    rgba = np.array([[[255, 0, 0, 255], [0, 255, 0, 0], [0, 0, 0, 128]]], dtype=np.uint8)
    data = encode(Image.fromarray(rgba, mode="RGBA"), image_format, **params)

    image = decode_image(data, limits=LIMITS)

    pixels = _pixels(image).astype(np.int16)
    assert image.mode == "RGB"
    assert pixels[0, 0].tolist() == [255, 0, 0]
    assert pixels[0, 1].tolist() == [255, 255, 255]
    assert np.abs(pixels[0, 2] - 127).max() <= 2


@pytest.mark.parametrize(
    ("mode", "key", "kept", "kept_rgb"),
    [("L", 7, 200, (200, 200, 200)), ("RGB", (10, 20, 30), (40, 50, 60), (40, 50, 60)), ("1", 0, 1, WHITE)],
    ids=["gray", "rgb", "bilevel"],
)
def test_decode_png_colour_key_paints_keyed_pixels_white(
    mode: str, key: int | tuple[int, int, int], kept: int | tuple[int, int, int], kept_rgb: tuple[int, int, int]
) -> None:
    keyed = Image.new(mode, (2, 1), kept)
    keyed.putpixel((0, 0), key)
    data = encode(keyed, "PNG", transparency=key)

    image = decode_image(data, limits=LIMITS)

    pixels = _pixels(image)
    assert tuple(pixels[0, 0]) == WHITE
    assert tuple(pixels[0, 1]) == kept_rgb


@pytest.mark.parametrize(
    ("cmyk", "rgb"),
    [
        ((0, 255, 255, 0), (255, 0, 0)),
        ((255, 0, 255, 0), (0, 255, 0)),
        ((255, 255, 0, 0), (0, 0, 255)),
        ((0, 0, 0, 0), (255, 255, 255)),
        ((0, 0, 0, 255), (0, 0, 0)),
        ((0, 0, 0, 128), (127, 127, 127)),
    ],
    ids=["red", "green", "blue", "white", "black", "gray"],
)
def test_decode_cmyk_jpeg_converts_colours_approximately(
    cmyk: tuple[int, int, int, int], rgb: tuple[int, int, int]
) -> None:
    data = encode(Image.new("CMYK", (32, 32), cmyk), "JPEG", quality=100)

    image = decode_image(data, limits=LIMITS)

    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert image.mode == "RGB"
    assert np.abs(_pixels(image).astype(np.int16) - np.array(rgb)).max() <= 6


def test_decode_16_bit_grayscale_png_is_scaled_not_clipped() -> None:
    levels = np.array([[65535, 32768, 16384, 255, 0]], dtype=np.uint16)
    data = encode(Image.fromarray(levels), "PNG")

    image = decode_image(data, limits=LIMITS)

    gray = _pixels(image)[0, :, 0].astype(np.int16)
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    assert gray[0] == 255
    assert abs(gray[1] - 128) <= 1
    assert abs(gray[2] - 64) <= 1
    assert gray[3] <= 1  # 255 of 65535 is nearly black; clipping would have made it white
    assert gray[4] == 0


@pytest.mark.parametrize(
    ("mode", "raw"),
    [
        ("I;16", struct.pack("<HHH", 65535, 32768, 0)),
        ("I;16L", struct.pack("<HHH", 65535, 32768, 0)),
        ("I;16B", struct.pack(">HHH", 65535, 32768, 0)),
    ],
)
def test_to_rgb_scales_every_16_bit_mode_to_8_bits(mode: str, raw: bytes) -> None:
    image = Image.frombytes(mode, (3, 1), raw)

    rgb = to_rgb(image)

    gray = _pixels(rgb)[0, :, 0].astype(np.int16)
    assert rgb.mode == "RGB"
    assert gray[0] == 255
    assert abs(gray[1] - 128) <= 1
    assert gray[2] == 0


def test_to_rgb_scales_mode_i_with_16_bit_values() -> None:
    image = Image.fromarray(np.array([[65535, 32768, 256, 0]], dtype=np.int32), mode="I")

    rgb = to_rgb(image)

    gray = _pixels(rgb)[0, :, 0].astype(np.int16)
    assert gray[0] == 255
    assert abs(gray[1] - 128) <= 1
    assert gray[2] <= 1
    assert gray[3] == 0


def test_to_rgb_keeps_mode_i_values_that_fit_in_8_bits() -> None:
    image = Image.fromarray(np.array([[255, 128, 7, 0]], dtype=np.int32), mode="I")

    rgb = to_rgb(image)

    assert _pixels(rgb)[0, :, 0].tolist() == [255, 128, 7, 0]


def test_to_rgb_clamps_mode_i_outside_16_bits() -> None:
    image = Image.fromarray(np.array([[-5, 100_000, 0]], dtype=np.int32), mode="I")

    rgb = to_rgb(image)

    assert _pixels(rgb)[0, :, 0].tolist() == [0, 255, 0]


def test_to_rgb_stretches_mode_f_over_the_full_range() -> None:
    image = Image.fromarray(np.array([[-1.0, 0.0, 1.0]], dtype=np.float32), mode="F")

    rgb = to_rgb(image)

    gray = _pixels(rgb)[0, :, 0].astype(np.int16)
    assert gray[0] == 0
    assert abs(gray[1] - 128) <= 1
    assert gray[2] == 255


def test_to_rgb_makes_constant_mode_f_black() -> None:
    image = Image.new("F", (3, 2), 0.5)

    rgb = to_rgb(image)

    assert _pixels(rgb).max() == 0


def test_to_rgb_stretches_mode_f_over_finite_values_only() -> None:
    image = Image.fromarray(np.array([[0.0, 1.0, 0.5, np.inf, -np.inf, np.nan]], dtype=np.float32), mode="F")

    with np.errstate(all="raise"):
        rgb = to_rgb(image)

    gray = _pixels(rgb)[0, :, 0].astype(np.int16)
    assert gray[0] == 0
    assert gray[1] == 255
    assert abs(gray[2] - 128) <= 1
    assert gray[3] == 255
    assert gray[4] == 0
    assert gray[5] == 0


@pytest.mark.parametrize("mode", ["La", "RGBa"])
def test_to_rgb_composites_premultiplied_alpha_onto_white(mode: str) -> None:
    # 100 premultiplied by alpha 128 is a straight value of about 199, half covering the white.
    image = Image.new(mode, (2, 1), (100, 128) if mode == "La" else (100, 100, 100, 128))

    rgb = to_rgb(image)

    assert rgb.mode == "RGB"
    assert np.abs(_pixels(rgb).astype(np.int16) - 227).max() <= 2


def test_to_rgb_returns_an_rgb_image_itself() -> None:
    image = _noise(width=8, height=4)

    rgb = to_rgb(image)

    assert rgb is image


@pytest.mark.parametrize(
    "mode", ["1", "L", "LA", "La", "P", "PA", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "F"]
)
def test_to_rgb_brings_every_mode_to_rgb_of_the_same_size(mode: str) -> None:
    image = Image.new(mode, (5, 3))

    rgb = to_rgb(image)

    assert rgb.mode == "RGB"
    assert rgb.size == (5, 3)


# --- EXIF orientation ----------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_decode_png_applies_exif_orientation_exactly(orientation: int) -> None:
    stored = _noise(width=7, height=4)
    data = encode(stored, "PNG", exif=_exif(orientation))

    image = decode_image(data, limits=LIMITS)

    expected = _exif_oriented(_pixels(stored), orientation)
    assert image.size == (expected.shape[1], expected.shape[0])
    assert np.array_equal(_pixels(image), expected)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("image_format", ["JPEG", "WEBP"])
def test_decode_lossy_format_applies_exif_orientation(image_format: str, orientation: int) -> None:
    stored = _blocks(columns=3, rows=2, block=16)
    data = encode(stored, image_format, exif=_exif(orientation), quality=95)

    image = decode_image(data, limits=LIMITS)

    expected = _exif_oriented(_pixels(stored), orientation)
    assert image.size == (expected.shape[1], expected.shape[0])
    assert np.abs(_pixels(image).astype(np.int16) - expected.astype(np.int16)).mean() < 4


def test_decode_drops_the_orientation_it_applied() -> None:
    data = encode(_noise(width=7, height=4), "PNG", exif=_exif(6))

    image = decode_image(data, limits=LIMITS)

    assert image.getexif().get(ORIENTATION_TAG, 1) == 1


def test_decode_applies_exif_orientation_to_palette_png_with_transparency() -> None:
    data = encode(_palette_image(), "PNG", transparency=1, exif=_exif(8))

    image = decode_image(data, limits=LIMITS)

    # Turned a quarter counter-clockwise: the last column is now the top row.
    assert _pixels(image).tolist() == [[[10, 10, 200]], [[255, 255, 255]], [[200, 10, 10]]]


@pytest.mark.parametrize("orientation", [0, 9, 65535])
@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
def test_decode_ignores_out_of_range_exif_orientation(image_format: str, orientation: int) -> None:
    data = encode(_blocks(columns=3, rows=2, block=16), image_format, exif=_exif(orientation), quality=95)

    image = decode_image(data, limits=LIMITS)

    assert image.mode == "RGB"
    assert image.size == (48, 32)


MALFORMED_EXIF: dict[str, bytes] = {
    "garbage": b"this is not a TIFF header",
    "empty": b"",
    "tiff-header-only": b"II*\x00",
    "ifd-offset-past-end": b"II*\x00" + struct.pack("<I", 0xFFFF_FFF0),
    "entry-count-past-end": b"MM\x00*" + struct.pack(">IH", 8, 0xFFFF) + b"\x01\x12\x00\x03",
    "orientation-as-text": TIFF_LE + _tiff_ifd([(ORIENTATION_TAG, 2, 4, b"six\x00")]),
    "orientation-no-values": TIFF_LE + _tiff_ifd([(ORIENTATION_TAG, 3, 0, b"\x00\x00\x00\x00")]),
    "orientation-unknown-type": TIFF_LE + _tiff_ifd([(ORIENTATION_TAG, 99, 1, b"\x06\x00\x00\x00")]),
    "orientation-value-past-end": TIFF_LE + _tiff_ifd([(ORIENTATION_TAG, 5, 1, struct.pack("<I", 0x1000))]),
    "ifd-points-at-itself": TIFF_LE
    + _tiff_ifd([(0x8769, 4, 1, struct.pack("<I", 8)), (0x8825, 4, 1, struct.pack("<I", 8))], next_ifd=8),
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("payload", list(MALFORMED_EXIF.values()), ids=list(MALFORMED_EXIF))
@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_decode_ignores_malformed_exif(image_format: str, payload: bytes) -> None:
    data = encode(_blocks(columns=3, rows=2, block=16), image_format, exif=b"Exif\x00\x00" + payload)

    image = decode_image(data, limits=LIMITS)

    assert image.mode == "RGB"
    assert image.size == (48, 32)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "index",
    [
        b"garbage",
        TIFF_LE + _tiff_ifd([(0xB001, 4, 1, struct.pack("<I", 3))]),
        TIFF_LE + _tiff_ifd([(0xB001, 4, 1, struct.pack("<I", 3)), (0xB002, 7, 32, struct.pack("<I", 0xFFFF))]),
    ],
    ids=["garbage", "three-images-no-entries", "entries-past-end"],
)
def test_decode_jpeg_with_malformed_multi_picture_index_decodes_as_plain_jpeg(index: bytes) -> None:
    jpeg = encode(_blocks(columns=3, rows=2, block=16), "JPEG")
    segment = b"MPF\x00" + index
    data = jpeg[:2] + b"\xff\xe2" + struct.pack(">H", len(segment) + 2) + segment + jpeg[2:]

    image = decode_image(data, limits=LIMITS)

    assert image.size == (48, 32)


# --- animation -----------------------------------------------------------------------------------


def _frames(count: int) -> list[Image.Image]:
    first = _noise(width=40, height=30, seed=1)
    return [first] + [Image.new("RGB", (40, 30), (index * 5, 255 - index * 5, 77)) for index in range(1, count)]


@pytest.mark.parametrize(
    ("image_format", "params"), [("WEBP", {"lossless": True}), ("PNG", {})], ids=["animated-webp", "apng"]
)
def test_decode_animation_returns_its_first_frame_only(image_format: str, params: dict[str, Any]) -> None:
    frames = _frames(50)
    data = encode(frames[0], image_format, save_all=True, append_images=frames[1:], duration=20, **params)

    image = decode_image(data, limits=LIMITS)

    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 50
    assert image.size == (40, 30)
    assert np.array_equal(_pixels(image), _pixels(frames[0]))


# --- downscale -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "max_side", "expected_size", "expected_scale"),
    [
        ((1000, 500), 250, (250, 125), 0.25),
        ((500, 1000), 250, (125, 250), 0.25),
        ((1000, 1000), 400, (400, 400), 0.4),
        ((1001, 333), 500, (500, 166), 500 / 1001),
    ],
    ids=["landscape", "portrait", "square", "rounded"],
)
def test_downscale_caps_the_longest_side_and_returns_the_factor(
    size: tuple[int, int], max_side: int, expected_size: tuple[int, int], expected_scale: float
) -> None:
    image = Image.new("RGB", size, (10, 200, 30))

    small, scale = downscale(image, max_side=max_side)

    assert small.size == expected_size
    assert scale == pytest.approx(expected_scale)
    assert max(small.size) == max_side


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (100, 50)])
def test_downscale_returns_an_image_within_the_cap_untouched(size: tuple[int, int]) -> None:
    image = Image.new("RGB", size)

    small, scale = downscale(image, max_side=640)

    assert small is image
    assert scale == 1.0


def test_downscale_keeps_a_thin_side_at_least_one_pixel() -> None:
    image = Image.new("RGB", (1000, 1))

    small, scale = downscale(image, max_side=10)

    assert small.size == (10, 1)
    assert scale == pytest.approx(0.01)


def test_downscale_keeps_flat_colours() -> None:
    image = Image.new("RGB", (400, 300), (10, 200, 30))

    small, _ = downscale(image, max_side=100)

    assert np.unique(_pixels(small).reshape(-1, 3), axis=0).tolist() == [[10, 200, 30]]
