"""The one font loader: Pillow's default font at a size (cached), for captions on tiles, sheets and emulated frames."""

from __future__ import annotations

from functools import lru_cache

from PIL import ImageFont

__all__ = ["font"]


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):  # Pillow built without FreeType
        return ImageFont.load_default()
