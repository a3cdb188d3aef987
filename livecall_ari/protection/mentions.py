"""Where a telephone number is written inside a text (a CDR line, a dialplan argument, a note),
in whatever form it was dialled or typed: ``02079460018``, ``+442079460018``,
``00442079460018``, ``902079460018`` behind an outside-line prefix, ``020 7946 0018``,
``(020) 7946-0018``.

A mention is a run of digit groups (an optional ``+`` first) separated by at most a few spaces,
brackets or hyphens, that parses as the number or whose digits end with its national or
international digits (an outside-line or carrier prefix before them). Erasure replaces each
mention whole: ``00442079460018`` or ``902079460018`` becomes the pseudonym, never a leftover
prefix and a pseudonym. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Callable

import phonenumbers
from phonenumbers import PhoneNumberFormat

from livecall_ari.screening.numbers import Number

_GROUP = re.compile(r"\+?\d+")
_SEPARATOR = re.compile(r"[ ()\-]{1,3}")
# Digit groups a written number is made of at most (+44 (0) 20 7946 0018 is five).
_MAX_GROUPS = 6

Parse = Callable[[str], "Number | None"]


def mention_spans(text: str, e164: str, parse: Parse) -> list[tuple[int, int]]:
    """(start, end) of each mention of ``e164`` in ``text``, left to right, never overlapping."""
    tails = number_tails(e164)
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(text)]
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(groups):
        last = i
        while (last + 1 < len(groups) and last + 1 - i < _MAX_GROUPS
               and _SEPARATOR.fullmatch(text, groups[last][1], groups[last + 1][0])
               and not text[groups[last + 1][0]] == "+"):
            last += 1
        # The longest run of groups first: "0044 20 7946 0018" is one mention, not "20 7946 0018".
        for j in range(last, i - 1, -1):
            start, end = groups[i][0], groups[j][1]
            if _is_mention(text[start:end], e164, tails, parse):
                # "(020) 7946 0018": the bracket opened before the first group is the mention's.
                if start > 0 and text[start - 1] == "(" and text[groups[i][1]:groups[i][1] + 1] == ")":
                    start -= 1
                spans.append((start, end))
                i = j + 1
                break
        else:
            i += 1
    return spans


def number_tails(e164: str) -> tuple[str, ...]:
    """The digits any written form of ``e164`` ends with: its international digits and its
    national digits (``442079460018``, ``02079460018``), the shorter only when long enough
    (seven digits) not to be the tail of someone else's number by chance."""
    tails = [e164.lstrip("+")]
    try:
        national = phonenumbers.format_number(phonenumbers.parse(e164, None), PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        national = ""
    digits = "".join(ch for ch in national if ch.isdigit())
    if len(digits) >= 7:
        tails.append(digits)
    return tuple(dict.fromkeys(tails))


def _is_mention(candidate: str, e164: str, tails: tuple[str, ...], parse: Parse) -> bool:
    digits = "".join(ch for ch in candidate if ch.isdigit())
    group = _GROUP.match(candidate)
    first = len(group.group().lstrip("+")) if group else 0
    # A prefix before the tail must sit in the first group ("9" of 902079460018, "00" of 0044
    # 20...): a whole group before it is something else ("60 02079460018": a Dial timeout).
    if any(digits.endswith(tail) and len(digits) - len(tail) < first for tail in tails):
        return True
    number = parse(candidate)
    return number is not None and number.e164 == e164


def replace_mentions(text: str, e164: str, replacement: str, parse: Parse) -> str:
    """``text`` with every mention of ``e164`` replaced, whole, by ``replacement``."""
    out, at = [], 0
    for start, end in mention_spans(text, e164, parse):
        out += [text[at:start], replacement]
        at = end
    return "".join(out) + text[at:]


def like_pattern(e164: str) -> str:
    """A LIKE pattern every text mentioning ``e164`` matches (its last four digits, which every
    usual way of writing a number keeps together); the rows it selects are checked in Python."""
    return f"%{e164[-4:]}%"
