"""Find the bracket or quote a syntax error is really about: the one opened and never closed.

A parser that meets an unclosed `[` reports where it gave up, often lines later (at the
next key, or at the end of the file). This scanner finds the innermost opener still open
at that place that is never closed properly, so the error can point where it opened.
"""

from __future__ import annotations

import re
from typing import Final

_PAIRS: Final = {"]": "[", "}": "{"}
JSON_STRINGS: Final = (re.compile(r'"(?:[^"\\\n]|\\.)*"'),)
TOML_STRINGS: Final = (
    re.compile(r'"""(?:[^\\]|\\.)*?"""', re.DOTALL),
    re.compile(r"'''.*?'''", re.DOTALL),
    re.compile(r'"(?:[^"\\\n]|\\.)*"'),
    re.compile(r"'[^'\n]*'"),
)


def unclosed(
    text: str, limit: int, *, strings: tuple[re.Pattern[str], ...], quotes: str = '"', comment: str = ""
) -> tuple[int, str] | None:
    """`(offset, opener)` of the innermost `[`, `{` or quote open at offset `limit` and never
    closed properly (by its own bracket, or a quote on its line), or `None`.

    Linear in the text; never raises.
    """
    stack: list[tuple[int, str]] = []
    found: tuple[int, str] | None = None
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in quotes:
            for pattern in strings:
                m = pattern.match(text, i)
                if m is not None:
                    i = m.end()
                    break
            else:
                # A quote with no end: an error inside it or at the line's end is about it.
                eol = text.find("\n", i)
                eol = n if eol < 0 else eol
                if i < limit <= eol:
                    return i, c
                i = eol
            continue
        if comment and c == comment:
            eol = text.find("\n", i)
            i = n if eol < 0 else eol
            continue
        if c in "[{":
            stack.append((i, c))
        elif c in "]}":
            while stack and stack[-1][1] != _PAIRS[c]:
                pos, opener = stack.pop()  # closed by the wrong bracket: never closed
                if pos < limit <= i and (found is None or pos > found[0]):
                    found = pos, opener
            if stack:
                stack.pop()
        i += 1
    for pos, opener in stack:  # still open at the end
        if pos < limit and (found is None or pos > found[0]):
            found = pos, opener
    return found


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def offset_of(text: str, line: int, col: int) -> int:
    """The offset of 1-based `line`, `col` in `text` (clamped to the text)."""
    pos = 0
    for _ in range(line - 1):
        nl = text.find("\n", pos)
        if nl < 0:
            return len(text)
        pos = nl + 1
    return min(pos + col - 1, len(text))


def what(opener: str) -> str:
    """How a message names an opener."""
    return "a quoted string is not closed" if opener in "\"'" else f"'{opener}' is not closed"
