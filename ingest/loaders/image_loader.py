"""Images (.png .jpg .jpeg .bmp .tif .tiff .webp) read by OCR; every frame of a multi-page TIFF is a page."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from ingest.loaders.load_error import LoadError
from ingest.loaders.ocr_engine import OcrUnavailable, load_ocr_engine
from ingest.loaders.page_ocr import PageProgress, no_progress, ocr_page
from ingest.records import PageText
from ingest.settings import LimitSettings, OcrSettings


def _open(data: bytes, path: str, limits: LimitSettings) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only: the size is known before decoding
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        reason = "not a readable image (corrupt, or not the format its name says)" \
            if isinstance(exc, UnidentifiedImageError) else f"image too large ({exc})"
        raise LoadError(path, reason) from exc
    except Exception as exc:  # Pillow plugins raise their own types on broken headers
        raise LoadError(path, f"not a readable image ({type(exc).__name__}: {exc})") from exc
    return image


def read_image(data: bytes, path: str, limits: LimitSettings, ocr: OcrSettings,
               on_page: PageProgress = no_progress) -> list[PageText]:
    """The text on each frame of the image (page numbers only for multi-frame images)."""
    image = _open(data, path, limits)
    n_frames = getattr(image, "n_frames", 1)
    if n_frames > limits.max_ocr_pages:
        raise LoadError(path, f"{n_frames} image frames need OCR, over the limit of {limits.max_ocr_pages} "
                              "(limits.max_ocr_pages)")
    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise LoadError(path, f"image is {width}x{height} = {width * height / 1e6:.0f} megapixels, over the limit of "
                              f"{limits.max_image_pixels / 1e6:g} (limits.max_image_pixels; a decompression bomb?)")
    try:
        engine = load_ocr_engine(ocr)
    except OcrUnavailable as exc:
        raise LoadError(path, f"an image needs OCR to be read, but {exc}") from exc
    pages = []
    try:
        for number, frame in enumerate(ImageSequence.Iterator(image), 1):
            if frame.width * frame.height > limits.max_image_pixels:
                raise LoadError(path, f"frame {number} is {frame.width}x{frame.height}, over limits.max_image_pixels")
            frame.load()
            if n_frames == 1:
                frame = ImageOps.exif_transpose(frame)  # a phone photo stored sideways with an orientation tag
            pages.append(PageText(text=ocr_page(frame, engine, ocr), page=number if n_frames > 1 else None))
            on_page(number, n_frames)
    except LoadError:
        raise
    except Exception as exc:  # truncated or corrupt pixel data shows only when decoding
        raise LoadError(path, f"corrupt image data ({type(exc).__name__}: {exc})") from exc
    return pages
