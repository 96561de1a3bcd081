"""Find the number of images a prompt asks for, and rewrite it.

Both model pages say the prompt must state how many images to make and that this must
agree with the count option. This module finds that number in English (digits and number
words) and in the common Korean, Chinese and Japanese counter forms, and can rewrite it in
the same style. A number said per image is not a count of images: "one moment per image",
"one image per hour", "a single frame each", "1枚ずつ", "每三张", "한 장씩".
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["CountMention", "find_counts", "prefix_count", "rewrite_count", "stated_count"]

Style = Literal["digits", "en", "ko", "zh", "ja"]

_EN_WORDS = {
    "a single": 1,
    "single": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
}
_EN_BY_VALUE = {v: k for k, v in _EN_WORDS.items() if k not in ("a single", "single")}

_EN_NOUNS = (
    r"images?|pictures?|pics?|photos?|photographs?|frames?|panels?|shots?|illustrations?|"
    r"scenes?|stills?|renders?|renderings?|variations?|sketch(?:es)?|drawings?|portraits?|"
    r"posters?|cards?|slides?|views?|artworks?|paintings?|storyboards?|comics?|"
    r"keyframes?|pages?|outputs?|versions?|tiles?|stickers?|icons?|wallpapers?|shots?|cuts?"
)
_NUMBER = r"\d+|" + "|".join(sorted(_EN_WORDS, key=len, reverse=True))
# Up to three describing words may stand between the number and the noun ("3 cinematic wide images"),
# but never another number.
_FILLER = r"(?:(?!(?:" + _NUMBER + r")\b)[^\W\d_]+(?:[-'][^\W\d_]+)*[\s,]+){0,3}?"
_EACH = r"(?:per|each|every|apiece|a\s+piece)\b"
_DISTRIBUTED_AFTER = re.compile(r"\s*(?:,\s*)?(?:" + _EACH + r"|for\s+(?:each|every)\b)", re.I)
"""After "one image": "per hour", "each", "for every season": a number said per something, not a count."""
_DISTRIBUTED_BEFORE = re.compile(r"\b(?:per|each|every)\s+$", re.I)
"""Before the number: "every 3 frames", "per 2 images"."""
_LINKING = re.compile(r"\b(?:per|each|every|for|of|in|on|to|with|from|at|by|a|an|the)\b", re.I)
"""Words that cannot stand between a number and its image noun: "one moment per image" counts moments."""
_EN_PATTERNS = (
    # "3 images", "three cinematic pictures", "4-panel", "6-frame"
    re.compile(
        r"(?<![\w.,/-])(?P<n>" + _NUMBER + r")(?:\s+|-)" + _FILLER + r"(?P<noun>" + _EN_NOUNS + r")\b",
        re.I,
    ),
    # "a series of 4 frames", "a set of five", "sequence of 6"
    re.compile(
        r"\b(?:series|set|sequence|collection|batch|group|grid)\s+of\s+(?P<n>" + _NUMBER + r")\b",
        re.I,
    ),
)

_KO_NATIVE = {
    "한": 1,
    "두": 2,
    "세": 3,
    "석": 3,
    "네": 4,
    "넉": 4,
    "다섯": 5,
    "여섯": 6,
    "일곱": 7,
    "여덟": 8,
    "아홉": 9,
    "열": 10,
    "열한": 11,
    "열두": 12,
    "열세": 13,
    "열네": 14,
    "열다섯": 15,
    "열여섯": 16,
    "열일곱": 17,
    "열여덟": 18,
    "열아홉": 19,
    "스무": 20,
}
_KO_BY_VALUE = {v: k for k, v in _KO_NATIVE.items() if k not in ("석", "넉")}
_KO_NUMBER = r"\d+|" + "|".join(sorted(_KO_NATIVE, key=len, reverse=True))
_KO_PATTERNS = (
    # "3장", "세 장", "네 장면", "4컷", "이미지 3개"; a particle may follow the counter, another word may not
    re.compile(
        r"(?<![\d가-힣])(?P<n>" + _KO_NUMBER + r")\s*(?:장면|장|컷)"
        r"(?:(?![가-힣])|(?=의|을|를|이|은|짜리|으로|로|만))"
    ),
    re.compile(r"(?<![\d가-힣])(?P<n>" + _KO_NUMBER + r")\s*개의?\s*(?:이미지|사진|그림|장면|컷)"),
    re.compile(r"(?:이미지|사진|그림|장면)\s*(?P<n>" + _KO_NUMBER + r")\s*(?:개|장)"),
)

_CJK_DIGITS = {"一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CJK_NUMBER = r"\d+|[一二两兩三四五六七八九十]{1,3}"
_CJK_BEFORE = (
    r"(?<![\d一二两兩三四五六七八九十第每毎])"  # not inside a longer number, not an ordinal (第3张) nor "each" (每3张)
)
_CJK_AFTER = r"(?!\s*(?:ごと|毎|ずつ|づつ|一个|一個))"  # not "1枚ごとに", "1枚ずつ" (per sheet, one each)
_CJK_PATTERNS: tuple[tuple[re.Pattern[str], Style], ...] = (
    # Chinese: "3张", "三张", "四幅", "生成5个画面"
    (re.compile(_CJK_BEFORE + r"(?P<n>" + _CJK_NUMBER + r")\s*(?:张|張|幅|帧|幀)" + _CJK_AFTER), "zh"),
    (
        re.compile(_CJK_BEFORE + r"(?P<n>" + _CJK_NUMBER + r")\s*[个個]\s*(?:图片|圖片|画面|畫面|图像|圖像|镜头|鏡頭)"),
        "zh",
    ),
    # Japanese: "3枚", "三枚", "4コマ"
    (re.compile(_CJK_BEFORE + r"(?P<n>" + _CJK_NUMBER + r")\s*(?:枚|コマ)" + _CJK_AFTER), "ja"),
)


@dataclass(frozen=True)
class CountMention:
    """A number of images stated in a prompt: its value, where it stands, and how it is written."""

    value: int
    start: int
    end: int
    style: Style
    text: str
    noun_start: int = -1
    noun_end: int = -1


def _cjk_value(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        if len(tens) > 1 or len(ones) > 1:
            return None
        t = _CJK_DIGITS.get(tens, 0) if tens else 1
        o = _CJK_DIGITS.get(ones, 0) if ones else 0
        if (tens and not t) or (ones and not o):
            return None
        return t * 10 + o
    if len(text) == 1:
        return _CJK_DIGITS.get(text)
    return None


def _cjk_numeral(n: int, style: Style) -> str:
    names = "一二三四五六七八九"
    if n <= 0 or n >= 100:
        return str(n)
    tens, ones = divmod(n, 10)
    out = ""
    if tens:
        out = ("" if tens == 1 else names[tens - 1]) + "十"
    if ones:
        out += "两" if (style == "zh" and n == 2) else names[ones - 1]
    return out


def _normalise(prompt: str) -> str:
    # Full-width digits ("３枚") to ASCII, one character for one, so spans stay valid.
    return "".join(unicodedata.normalize("NFKC", ch) if "０" <= ch <= "９" else ch for ch in prompt)


def find_counts(prompt: str) -> list[CountMention]:
    """Every image count stated in the prompt, in order of appearance; time linear in the prompt's length."""
    return list(_counts(prompt))


@functools.lru_cache(maxsize=256)  # a sweep validates one prompt for each of its thousands of runs
def _counts(prompt: str) -> tuple[CountMention, ...]:
    text = _normalise(prompt)
    found: list[CountMention] = []
    # Which characters a mention already covers: a later pattern's match that overlaps one is
    # dropped. Each check reads only its own span, and one pattern's spans never overlap, so
    # the whole search stays linear however many mentions the prompt holds.
    taken = bytearray(len(text))

    def add(match: re.Match[str], style: Style, value: int | None) -> None:
        if value is None:
            return
        start, end = match.span("n")
        if any(taken[start:end]):
            return
        taken[start:end] = b"\x01" * (end - start)
        noun = match.span("noun") if "noun" in match.re.groupindex else (-1, -1)
        found.append(CountMention(value, start, end, style, prompt[start:end], *noun))

    for pattern in _EN_PATTERNS:
        for m in pattern.finditer(text):
            if _distributed(text, m):
                continue
            word = m.group("n").lower()
            if word.isdigit():
                add(m, "digits", int(word))
            else:
                add(m, "en", _EN_WORDS[re.sub(r"\s+", " ", word)])
    for pattern in _KO_PATTERNS:
        for m in pattern.finditer(text):
            n = m.group("n")
            add(m, "digits" if n.isdigit() else "ko", int(n) if n.isdigit() else _KO_NATIVE[n])
    for pattern, style in _CJK_PATTERNS:
        for m in pattern.finditer(text):
            n = m.group("n")
            add(m, "digits" if n.isdigit() else style, _cjk_value(n))
    found.sort(key=lambda m: m.start)
    return tuple(found)


def _distributed(text: str, match: re.Match[str]) -> bool:
    """Whether an English number-and-noun match says a number per something ("one moment per image"), not a count."""
    if "noun" not in match.re.groupindex:
        return False
    between = text[match.end("n") : match.start("noun")]
    before = text[max(0, match.start("n") - 12) : match.start("n")]
    return bool(
        _LINKING.search(between) or _DISTRIBUTED_BEFORE.search(before) or _DISTRIBUTED_AFTER.match(text, match.end())
    )


def stated_count(prompt: str, allowed: range = range(1, 16)) -> int | None:
    """The first image count the prompt states that is allowed, or None."""
    return next((m.value for m in find_counts(prompt) if m.value in allowed), None)


def _spell(n: int, mention: CountMention) -> str:
    if mention.style == "digits":
        return str(n)
    if mention.style == "en":
        word = "a single" if mention.text.lower() == "a single" and n == 1 else _EN_BY_VALUE.get(n, str(n))
        if mention.text[:1].isupper():
            word = word[:1].upper() + word[1:]
        return word
    if mention.style == "ko":
        return _KO_BY_VALUE.get(n, str(n))
    return _cjk_numeral(n, mention.style)


def _inflect(noun: str, n: int) -> str:
    sibilant = noun.lower().endswith(("ches", "shes", "ch", "sh"))
    plural = noun.lower().endswith("s")
    if n == 1 and plural:
        return noun[:-2] if sibilant else noun[:-1]
    if n != 1 and not plural:
        return noun + ("es" if sibilant else "s")
    return noun


def rewrite_count(prompt: str, n: int, mentions: Sequence[CountMention] | None = None) -> str:
    """The prompt with every stated image count replaced by ``n``, each in its own style.

    ``mentions``: ``find_counts(prompt)`` when the caller has it already.
    """
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement); spans never overlap
    for mention in find_counts(prompt) if mentions is None else mentions:
        edits.append((mention.start, mention.end, _spell(n, mention)))
        if mention.noun_start >= 0 and prompt[mention.end : mention.end + 1] != "-":  # "4-panel" stays singular
            noun = prompt[mention.noun_start : mention.noun_end]
            edits.append((mention.noun_start, mention.noun_end, _inflect(noun, n)))
    edits.sort()
    pieces: list[str] = []
    done = 0  # prompt[:done] is in pieces already
    for start, end, replacement in edits:
        pieces += (prompt[done:start], replacement)
        done = end
    pieces.append(prompt[done:])
    return "".join(pieces)


def prefix_count(prompt: str, n: int) -> str:
    """The prompt behind "Generate N images of"."""
    noun = "image" if n == 1 else "images"
    return f"Generate {n} {noun} of {prompt.strip()}"
