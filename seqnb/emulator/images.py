"""Procedural stand-ins for a generated series: one palette and subject per series, a progression per frame.

Each image is a pure function of (model, prompt, seed, width, height, index, count, tint), so a
test can ask for the same series twice and get the same bytes. ``tint``, the dominant colour of a
series' reference images, sets its palette: frames then look like their references, as a
reference series should, and similarity to references can be tested.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import random
from collections import Counter

from PIL import Image, ImageDraw

from .._fonts import font

__all__ = ["dominant_colour", "draw_frame", "render"]

Colour = tuple[int, int, int]

_SUBJECTS = ("walker", "balloon", "boat", "kite")


def dominant_colour(images: list[bytes]) -> Colour | None:
    """The most common colour of some images (each reduced to 4 colours), or None when none can be read."""
    votes: Counter[Colour] = Counter()
    for data in images:
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.draft("RGB", (64, 64))
                small = img.convert("RGB").resize((32, 32)).quantize(4)
        except Exception:  # not an image (or a broken one): it votes for nothing
            continue
        palette = small.getpalette() or []
        for n, index in small.getcolors() or []:
            at = int(index) * 3  # type: ignore[arg-type]  # a palette index in "P" mode
            votes[(palette[at], palette[at + 1], palette[at + 2])] += n
    return votes.most_common(1)[0][0] if votes else None


def _palette(rng: random.Random, tint: Colour | None = None) -> list[tuple[int, int, int]]:
    base = rng.random()
    if tint is not None:
        base = colorsys.rgb_to_hsv(*(c / 255 for c in tint))[0]
    colours = []
    for shift, sat, val in (
        (0.0, 0.55, 0.95),
        (0.08, 0.65, 0.75),
        (0.5, 0.45, 0.35),
        (0.55, 0.5, 0.22),
        (0.92, 0.8, 1.0),
    ):
        r, g, b = colorsys.hsv_to_rgb((base + shift) % 1.0, sat, val)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    if tint is not None:
        colours[0] = colours[1] = tint  # the sky is the references' own colour
    return colours


def draw_frame(
    model: str, prompt: str, seed: int | None, width: int, height: int, index: int, count: int,
    tint: Colour | None = None,
) -> Image.Image:  # fmt: skip
    """Frame ``index`` (0-based) of a series of ``count``: same scene, the subject and light moving on."""
    rng = random.Random(hashlib.sha256(f"{model}|{prompt}|{seed}|{width}x{height}".encode()).digest())  # per series
    sky_top, sky_low, hills_far, hills_near, accent = _palette(rng, tint)
    subject = rng.choice(_SUBJECTS)
    t = index / max(1, count - 1)

    # Sky: a vertical gradient drawn at 1 pixel wide and stretched (fast at any size).
    strip = Image.new("RGB", (1, 256))
    for row in range(256):
        k = row / 255
        strip.putpixel((0, row), tuple(int(a + (b - a) * k) for a, b in zip(sky_top, sky_low, strict=True)))
    img = strip.resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(img)
    s = min(width, height)

    # The light crosses the sky along an arc as the frames advance.
    angle = math.pi * (0.1 + 0.8 * t)
    cx = width / 2 + math.cos(angle) * width * 0.4
    cy = height * 0.55 - math.sin(angle) * height * 0.4
    r = s * 0.07
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=accent)

    # Two ridges, the same in every frame, the near one shifting a little (parallax).
    for layer, (colour, base_y, rough, shift) in enumerate(
        ((hills_far, 0.62, 0.10, 0.03), (hills_near, 0.78, 0.07, 0.08))
    ):
        steps = 9
        heights = [rng.uniform(-rough, rough) for _ in range(steps + 3)]
        offset = -t * shift * width
        points = [(0.0, float(height))]
        for i in range(steps + 3):
            x = offset + i * width / steps
            points.append((x, height * (base_y + heights[i])))
        points.append((float(width), float(height)))
        draw.polygon(points, fill=colour)
        if layer == 0:
            for _ in range(rng.randint(20, 40)):  # stars or birds, fixed per series
                sx, sy = rng.uniform(0, width), rng.uniform(0, height * 0.4)
                dot = max(1.0, s * 0.004)
                draw.ellipse((sx - dot, sy - dot, sx + dot, sy + dot), fill=sky_low)

    # The subject moves left to right across the series.
    x = width * (0.12 + 0.76 * t)
    ground = height * 0.8
    u = s * 0.05
    if subject == "walker":
        draw.ellipse((x - u * 0.5, ground - u * 3.2, x + u * 0.5, ground - u * 2.2), fill=accent)
        draw.rectangle((x - u * 0.4, ground - u * 2.2, x + u * 0.4, ground - u * 0.8), fill=hills_far)
        stride = u * 0.5 * (1 if index % 2 else -1)
        draw.line((x, ground - u * 0.8, x + stride, ground), fill=hills_far, width=max(1, int(u * 0.25)))
        draw.line((x, ground - u * 0.8, x - stride, ground), fill=hills_far, width=max(1, int(u * 0.25)))
    elif subject == "balloon":
        y = height * (0.5 - 0.3 * t)
        draw.ellipse((x - u, y - u * 1.3, x + u, y + u * 0.7), fill=accent)
        draw.rectangle((x - u * 0.3, y + u * 1.0, x + u * 0.3, y + u * 1.4), fill=hills_near)
    elif subject == "boat":
        y = height * 0.86
        draw.polygon([(x - u * 1.5, y), (x + u * 1.5, y), (x + u, y + u * 0.6), (x - u, y + u * 0.6)], fill=accent)
        draw.polygon([(x, y - u * 2), (x, y), (x + u * 1.2, y)], fill=sky_low)
    else:
        y = height * (0.35 + 0.1 * math.sin(t * math.pi * 2))
        draw.polygon([(x, y - u), (x + u * 0.7, y), (x, y + u), (x - u * 0.7, y)], fill=accent)
        draw.line((x, y + u, x - u * 2, height * 0.8), fill=hills_near, width=max(1, int(u * 0.08)))

    # Caption: frame i/N, seed and size, so a viewer can tell frames and series apart.
    text = f"{index + 1}/{count}  seed {seed if seed is not None else 'random'}  {width}x{height}"
    caption_font = font(max(12, s // 40))
    pad = max(4, s // 120)
    box = draw.textbbox((pad * 2, height - pad * 2), text, font=caption_font, anchor="ld")
    draw.rectangle((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), fill=(0, 0, 0))
    draw.text((pad * 2, height - pad * 2), text, fill=(255, 255, 255), font=caption_font, anchor="ld")
    return img


def render(
    model: str, prompt: str, seed: int | None, width: int, height: int, index: int, count: int, fmt: str = "jpeg",
    tint: Colour | None = None,
) -> bytes:  # fmt: skip
    """The encoded bytes of one frame: JPEG (what the service returns, and fast) or PNG."""
    buf = io.BytesIO()
    img = draw_frame(model, prompt, seed, width, height, index, count, tint)
    if fmt == "png":
        img.save(buf, format="PNG", compress_level=1)
    else:
        img.save(buf, format="JPEG", quality=88)
    return buf.getvalue()
