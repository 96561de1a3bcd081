from __future__ import annotations

import re
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from seqnb.model.prompt_count import find_counts, prefix_count, rewrite_count
from seqnb.model.validation import validate_payload


@pytest.mark.parametrize(
    ("prompt", "value"),
    [
        ("Generate 3 images of a beautiful sunset over a calm ocean.", 3),
        ("three pictures of a fox in the snow", 3),
        ("A series of 4 frames showing a robot waking up", 4),
        ("a set of five stills from a noir film", 5),
        ("Make a 6-panel comic about a cat", 6),
        ("Create twelve cinematic wide-angle shots of Tokyo", 12),
        ("Generate 2 cute cat images", 2),
        ("A single image of a lighthouse", 1),
        ("1 cat shown in 3 images", 3),
        ("고양이 사진 3장", 3),
        ("고양이가 나오는 세 장의 그림", 3),
        ("바다 풍경 열다섯 장", 15),
        ("네 장면으로 이루어진 이야기", 4),
        ("이미지 5개를 만들어줘", 5),
        ("生成3张日落图片", 3),
        ("生成三张日落图片", 3),
        ("两张海边的照片", 2),
        ("十五张连续的画面", 15),
        ("画四幅山水画", 4),
        ("夕焼けの画像を3枚", 3),
        ("夕焼けの画像を三枚", 3),
        ("４コマ漫画", 4),
        ("１５枚の連続画像", 15),
    ],
)
def test_finds_the_stated_count(prompt: str, value: int) -> None:
    mentions = find_counts(prompt)
    assert mentions, prompt
    assert mentions[0].value == value


@pytest.mark.parametrize(
    "prompt",
    [
        "a beautiful sunset over a calm ocean",
        "a 3-day trip through the Alps",
        "2 cats and 1 dog on a sofa",
        "第3张是夜景",
        "the year 2024 in review",
        "세 번째 장소",
    ],
)
def test_no_count_where_none_is_stated(prompt: str) -> None:
    assert find_counts(prompt) == []


@pytest.mark.parametrize(
    ("prompt", "n", "expected"),
    [
        ("Generate 3 images of a fox", 5, "Generate 5 images of a fox"),
        ("Generate 3 images of a fox", 1, "Generate 1 image of a fox"),
        ("Three sketches of a fox", 1, "One sketch of a fox"),
        ("A single image of a fox", 4, "Four images of a fox"),
        ("Make a 4-panel comic", 2, "Make a 2-panel comic"),
        ("고양이 세 장", 2, "고양이 두 장"),
        ("고양이 사진 3장", 7, "고양이 사진 7장"),
        ("生成三张图片", 2, "生成两张图片"),
        ("生成三张图片", 12, "生成十二张图片"),
        ("画像を三枚", 2, "画像を二枚"),
        ("４コマ漫画", 3, "3コマ漫画"),
    ],
)
def test_rewrite_keeps_the_style(prompt: str, n: int, expected: str) -> None:
    assert rewrite_count(prompt, n) == expected
    assert find_counts(expected)[0].value == n


def test_prefix() -> None:
    assert prefix_count("  a fox in the snow ", 3) == "Generate 3 images of a fox in the snow"
    assert prefix_count("a fox", 1) == "Generate 1 image of a fox"


def python_lines_run(fn: Callable[[], object], modules: tuple[str, ...]) -> int:
    """How many lines of Python in ``modules`` ``fn`` executes: a measure of work that no clock can skew."""
    lines = 0

    def local(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal lines
        if event == "line":
            lines += 1
        return local

    def calls(frame: FrameType, event: str, arg: object) -> Any:
        return local if frame.f_code.co_filename.endswith(modules) else None

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return lines


@pytest.mark.parametrize(
    "unit",
    ["Generate 3 images of a cat, ", "고양이 사진 3장, ", "生成三张图片，", "Generate 2 images, then 3 images. "],
)
def test_work_grows_linearly_with_the_number_of_mentions(unit: str) -> None:
    """Validating a prompt that states its count n times was quadratic in n (11 s for 20,000)."""
    modules = ("prompt_count.py", "validation.py")

    def work(n: int) -> int:
        payload = {"prompt": unit * n, "sequential_image_generation_options": 4}
        return python_lines_run(lambda: validate_payload("seedream-4.5", payload), modules)

    small, large = work(500), work(1000)
    assert large <= 2.1 * small, (small, large)


def test_a_megabyte_prompt_is_read_and_rewritten_correctly() -> None:
    unit = "Generate 3 images of a cat. 고양이 사진 3장. 三张图片. "
    n = 1_000_000 // len(unit.encode())
    prompt = unit * n
    assert len(prompt.encode()) > 990_000
    mentions = find_counts(prompt)
    assert len(mentions) == 3 * n and {m.value for m in mentions} == {3}
    assert rewrite_count(prompt, 1) == "Generate 1 image of a cat. 고양이 사진 1장. 一张图片. " * n
    report = validate_payload("seedream-4.5", {"prompt": prompt, "sequential_image_generation_options": 2})
    assert {p.code for p in report.errors} == {"too_long", "count_mismatch"}
    fixed = next(f for p in report.errors for f in p.fixes if "prompt" in f.changes)
    assert fixed.changes["prompt"] == "Generate 2 images of a cat. 고양이 사진 2장. 两张图片. " * n


@pytest.mark.parametrize(
    "prompt",
    [
        "Generate 5 images of a lighthouse keeper's day, one moment per image",
        "Generate 5 images of a city, one image per hour from dawn",
        "Generate 3 images of a kite, a single frame each",
        "Generate 4 images of a tree, one image for each season",
        "Generate 6 images of a dance, every 2 frames a new step",
        "이미지 5장, 한 장씩 한 순간",
        "5张图片，每三张一个场景",
        "5枚の画像、1枚ごとに一つの瞬間",
        "5枚の画像を1枚ずつ",
    ],
)
def test_a_number_said_per_image_is_not_a_second_count(prompt: str) -> None:
    """ "one moment per image" was read as a second count (1, 5) and its fix wrote "five moment per images" (#30)."""
    assert [m.value for m in find_counts(prompt)] == [int("".join(c for c in prompt if c.isdigit())[0])]
    report = validate_payload("seedream-4.5", {"prompt": prompt, "sequential_image_generation_options": 7})
    (problem,) = [p for p in report.problems if p.field == "count"]  # one count, the stated one: no "several counts"
    assert "several" not in problem.message and problem.fixes
    fixed = rewrite_count(prompt, 7)
    assert [m.value for m in find_counts(fixed)] == [7]
    rest = re.split(r"[,，、を]", prompt, maxsplit=1)[1]
    assert fixed.endswith(rest)  # the words said per image are left as they were: no "five moment per images"
