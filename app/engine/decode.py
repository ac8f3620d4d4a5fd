"""Safe decoding of untrusted upload bytes into an RGB image.

Only JPEG, PNG and WEBP are accepted, told by their magic bytes (never by file name or
Content-Type). Pixel counts are checked from the header before any pixel is decoded, EXIF
orientation is applied where it is valid, and every mode Pillow can produce is brought to
8-bit RGB.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from app.errors import (
    EmptyFileError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")


@dataclass(frozen=True)
class ImageLimits:
    """What an upload may be."""

    max_bytes: int
    max_pixels: int
    min_side: int


def sniff_format(data: bytes) -> str | None:
    """The image format named by the leading bytes, or None when it is not one we accept."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


@dataclass(frozen=True)
class Decoded:
    """An upload decoded to 8-bit RGB and oriented, maybe at a reduced scale (a JPEG's DCT scaling).

    width and height are the full image's, after EXIF orientation: what answers report, and the
    frame boxes are given in. image may be smaller by scale_x and scale_y.
    """

    image: Image.Image
    width: int
    height: int

    @property
    def scale_x(self) -> float:
        return self.image.width / self.width

    @property
    def scale_y(self) -> float:
        return self.image.height / self.height

    @property
    def reduced(self) -> bool:
        return self.image.size != (self.width, self.height)


def decode_image(data: bytes, *, limits: ImageLimits) -> Image.Image:
    """Decode upload bytes into an 8-bit RGB image at full size, or raise the error the caller should see."""
    return decode(data, limits=limits).image


def decode(data: bytes, *, limits: ImageLimits, at_least: int | None = None) -> Decoded:
    """Decode upload bytes into an 8-bit RGB image, or raise the error the caller should see.

    With `at_least`, a JPEG is decoded at the smallest of 1/1, 1/2, 1/4 or 1/8 scale whose longest
    side is still at least that many pixels: libjpeg skips the work of the finer scales.
    """
    if not data:
        raise EmptyFileError("The uploaded image is empty (0 bytes).")
    if len(data) > limits.max_bytes:
        raise PayloadTooLargeError(
            f"The image is {len(data)} bytes; the limit is {limits.max_bytes}.",
            details={"bytes": len(data), "max_bytes": limits.max_bytes},
        )
    image_format = sniff_format(data)
    if image_format is None:
        raise UnsupportedMediaTypeError(
            "Only JPEG, PNG and WEBP images are accepted.", details={"accepted": list(ALLOWED_FORMATS)}
        )
    with warnings.catch_warnings():
        # Pillow only warns between its two decompression-bomb limits: make it an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image: Image.Image = Image.open(io.BytesIO(data), formats=[image_format])
            _check_dimensions(image.size, limits=limits)
            full_size = image.size
            if at_least is not None and image_format == "JPEG" and max(image.size) > at_least:
                factor = at_least / max(image.size)
                image.draft("RGB", (math.ceil(image.width * factor), math.ceil(image.height * factor)))
            image.load()  # first frame only for animated images; no frame iteration
        except (ImageTooLargeError, ImageTooSmallError):
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageTooLargeError(
                "The image has too many pixels.", details={"max_pixels": limits.max_pixels}
            ) from None
        except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error):
            raise InvalidImageError(f"The {image_format} image could not be decoded (truncated or corrupt).") from None
    stored = image.size
    image = to_rgb(_apply_exif_orientation(image))
    turned = image.size != stored  # EXIF orientations 5-8 turn the picture a quarter
    width, height = (full_size[1], full_size[0]) if turned else full_size
    return Decoded(image=image, width=width, height=height)


def _check_dimensions(size: tuple[int, int], *, limits: ImageLimits) -> None:
    width, height = size
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"The image is {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels}.",
            details={"width": width, "height": height, "max_pixels": limits.max_pixels},
        )
    if min(width, height) < limits.min_side:
        raise ImageTooSmallError(
            f"The image is {width}x{height}; both sides must be at least {limits.min_side} pixels.",
            details={"width": width, "height": height, "min_side": limits.min_side},
        )


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    # Malformed or out-of-range EXIF must never fail a request: keep the stored orientation.
    # In place: without an orientation tag, exif_transpose would return a copy of every photo.
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:  # noqa: BLE001 - any EXIF parser failure means "no usable orientation"
        return image
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Bring any Pillow mode to 8-bit RGB: transparency onto white, 16/32-bit scaled, not clipped."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # Pillow's own conversion clips 16-bit values to 255: scale to the full 8-bit range instead.
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        gray = np.clip(array * (255.0 / peak), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        # Stretch over the finite values only: one inf would otherwise flatten every other pixel to 0.
        finite = array[np.isfinite(array)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        array = np.nan_to_num(array, nan=low, posinf=high, neginf=low)
        scaled = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
        return Image.fromarray(scaled.astype(np.uint8), mode="L").convert("RGB")
    if mode == "La":
        # Pillow has no La -> RGBA conversion: un-premultiply through LA first.
        image = image.convert("LA")
    if image.mode in ("P", "PA", "LA", "RGBa") or "transparency" in image.info:
        # A tRNS colour key (on 1, L, RGB or P images) hides pixels just as an alpha channel does.
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV
