"""The models' input schemas exactly as their RunComfy pages publish them (what the catalog serves).

The edit-sequential siblings' pages show only example bodies: ``EDIT_SCHEMAS`` is the emulator's
UNCONFIRMED drawing of theirs (the sequential sibling's fields, plus ``images`` with other hosts'
limits).

Copied from the model pages, kept in ``tests/fixtures/seeds`` (``tests/fixtures/*.input.json`` hold the same text;
a test keeps the two equal). Data, not code: the emulator must not read files at run time.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["EDIT_SCHEMAS", "INPUT_SCHEMAS"]

INPUT_SCHEMAS: dict[str, dict[str, Any]] = {
    "bytedance/seedream-4-0/sequential": {
        "type": "object",
        "title": "Input",
        "required": ["text"],
        "properties": {
            "text": {
                "title": "Prompt",
                "description": "Your prompt needs to contain the number of images you want to "
                "generate. Example: 'Generate 3 images of a beautiful sunset over a "
                "calm ocean.'",
                "type": "string",
                "default": "Generate 3 images of a beautiful sunset over a calm ocean.",
                "maxLength": 600,
            },
            "image_size": {
                "title": "Aspect Ratio (W:H)",
                "description": "The aspect ratio of the image to generate.",
                "type": "string",
                "enum": [
                    "2048:2048 (1:1)",
                    "2304:1728 (4:3)",
                    "1728:2304 (3:4)",
                    "2560:1440 (16:9)",
                    "1440:2560 (9:16)",
                    "2496:1664 (3:2)",
                    "1664:2496 (2:3)",
                    "3024:1296 (21:9)",
                ],
                "default": "2560:1440 (16:9)",
            },
            "seed": {"title": "Seed", "description": "", "type": "integer"},
            "sequential_image_generation_options": {
                "title": "Maximum Number of Output Images",
                "description": "This value must align with the "
                "number of images specified in the "
                "prompt above. The final price will "
                "be calculated based on this value.",
                "type": "integer",
                "enum": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
                "default": 3,
            },
            "optimize_prompt_options": {
                "title": "Optimize Prompt",
                "description": "Standard mode produces higher-quality content "
                "but takes longer to generate. Fast mode "
                "generates content more quickly, with lower "
                "quality.",
                "type": "string",
                "enum": ["fast", "standard"],
                "default": "fast",
            },
        },
    },
    "bytedance/seedream-4-5/sequential": {
        "type": "object",
        "title": "Input",
        "required": ["prompt", "sequential_image_generation_options"],
        "properties": {
            "prompt": {
                "title": "Prompt",
                "description": "The prompt should be less than 600 characters. Your prompt needs "
                "to contain the number of images you want to generate. Example: "
                "'Generate 3 images of a beautiful sunset over a calm ocean.'",
                "type": "string",
                "default": "Generate 3 images of a beautiful sunset over a calm ocean.",
            },
            "sequential_image_generation_options": {
                "title": "Maximum Number of Output Images",
                "description": "This value must align with the "
                "number of images specified in the "
                "prompt above. The final price will "
                "be calculated based on this value.",
                "type": "integer",
                "enum": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
                "default": 3,
            },
            "resolution": {
                "title": "Resolution",
                "description": "For 2K and 4K options, it will let the model determine the "
                "width and height. you should describe its aspect ratio, "
                "shape, or purpose in the prompt using natural language. For "
                "other options, you can choose the width and height you want.",
                "type": "string",
                "enum": [
                    "2K",
                    "4K",
                    "2048x2048 (1:1)",
                    "2304x1728 (4:3)",
                    "1728x2304 (3:4)",
                    "2560x1440 (16:9)",
                    "1440x2560 (9:16)",
                    "2496x1664 (3:2)",
                    "1664x2496 (2:3)",
                    "3024x1296 (21:9)",
                    "4096x4096 (1:1)",
                ],
                "default": "2048x2048 (1:1)",
            },
            "seed": {"title": "Seed", "description": "", "type": "integer", "default": 41722289},
        },
    },
}


def _edit(sibling: str, max_items: int) -> dict[str, Any]:
    """An edit-sequential schema: the sibling's, plus the reference URLs (UNCONFIRMED limits)."""
    schema = json.loads(json.dumps(INPUT_SCHEMAS[sibling]))
    images = {
        "title": "Reference images",
        "description": "Public HTTPS URLs of reference images, up to 50 MB each.",
        "type": "array",
        "items": {"type": "string"},
        "maxItems": max_items,
    }
    schema["properties"] = {"images": images, **schema["properties"]}
    schema["required"] = ["images", *schema["required"]]
    return dict(schema)


EDIT_SCHEMAS: dict[str, dict[str, Any]] = {
    "bytedance/seedream-4-0/edit-sequential": _edit("bytedance/seedream-4-0/sequential", 10),
    "bytedance/seedream-4-5/edit-sequential": _edit("bytedance/seedream-4-5/sequential", 14),
}
