"""Anchors of the audit trail that a database writer cannot rewrite: the pure part.

The hash chain (core.py) shows an entry edited, removed or reordered, but its only anchor, the
head row, lives in the same database: someone who can write there can cut the tail and move the
head back. Two things stop that, both keyed with the audit key, which lives in a key file outside
the database:

- a **MAC** over every entry's hash and over the head (a writer without the key cannot make one
  for a rewritten entry or an older head);
- **anchors**: lines appended to a file outside the database (and logged), each with the head's
  sequence number and hash at that time and its own MAC. A head that falls behind the newest
  anchor, or an entry that no longer has the anchored hash, shows the cut.

The first line of the anchor file records where keying began (``keyed_from``): entries before it
were written before the key existed and carry no MAC. Nothing here reads a file or a clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Mapping, Sequence

from livecall_ari.protection.core import ChainEntry

_DOMAIN = "livecall-audit-v1"


def mac(key: bytes, *parts: object) -> str:
    """HMAC-SHA256 over the parts, each kind of value in its own domain."""
    text = "\x1f".join(str(p) for p in (_DOMAIN, *parts))
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def entry_mac(key: bytes, entry_hash: str) -> str:
    return mac(key, "entry", entry_hash)


def head_mac(key: bytes, seq: int, entry_hash: str) -> str:
    return mac(key, "head", seq, entry_hash)


@dataclass(frozen=True)
class Anchor:
    """The trail's head at one moment. ``kind`` "keyed" marks where keying began."""

    kind: str
    at: str
    seq: int
    entry_hash: str
    mac: str = ""

    def sealed(self, key: bytes) -> "Anchor":
        return Anchor(self.kind, self.at, self.seq, self.entry_hash, mac(key, "anchor", self.kind, self.at, self.seq, self.entry_hash))

    def is_sealed_by(self, key: bytes) -> bool:
        return hmac.compare_digest(self.mac, self.sealed(key).mac)

    def line(self) -> str:
        return json.dumps({"kind": self.kind, "at": self.at, "seq": self.seq, "entry_hash": self.entry_hash, "mac": self.mac},
                          sort_keys=True)


def parse_anchors(lines: Sequence[str], key: bytes, where: str) -> tuple[list[Anchor], list[str]]:
    """The anchors whose MAC holds, and a problem for every line that is not one."""
    anchors: list[Anchor] = []
    problems: list[str] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
            anchor = Anchor(str(data["kind"]), str(data["at"]), int(data["seq"]), str(data["entry_hash"]), str(data["mac"]))
        except (ValueError, KeyError, TypeError):
            problems.append(f"{where}:{number}: not an anchor line")
            continue
        if not anchor.is_sealed_by(key):
            problems.append(f"{where}:{number}: the anchor's MAC does not match (edited, or made with another key)")
            continue
        anchors.append(anchor)
    return anchors, problems


def keyed_from(anchors: Sequence[Anchor]) -> int | None:
    """The first sequence number written with the key (None: the file records no keying)."""
    starts = [a.seq + 1 for a in anchors if a.kind == "keyed"]
    return min(starts) if starts else None


def check_macs(entries: Sequence[ChainEntry], macs: Mapping[int, str], head: tuple[int, str, str] | None, key: bytes,
               first_keyed: int) -> list[str]:
    """Every entry from ``first_keyed`` on, and the head, must carry the MAC of its hash."""
    problems = []
    for entry in entries:
        if entry.seq >= first_keyed and not hmac.compare_digest(macs.get(entry.seq, ""), entry_mac(key, entry.entry_hash)):
            problems.append(f"entry {entry.seq}: its MAC does not match (written or rewritten without the audit key)")
    if head is not None and head[0] >= first_keyed and not hmac.compare_digest(head[2], head_mac(key, head[0], head[1])):
        problems.append(f"the trail's head (entry {head[0]}) has no valid MAC: it was moved without the audit key")
    return problems


def check_anchors(entries: Sequence[ChainEntry], anchors: Sequence[Anchor]) -> list[str]:
    """The newest anchor must still hold: the trail reaches its entry, and that entry has its hash."""
    if not anchors:
        return []
    newest = max(anchors, key=lambda a: a.seq)
    by_seq = {e.seq: e for e in entries}
    last = max(by_seq) if by_seq else 0
    if newest.seq > last:
        return [f"entries removed at the end: the anchor of {newest.at} counted {newest.seq} entries, the trail has {last}"]
    if newest.seq and by_seq.get(newest.seq) is not None and by_seq[newest.seq].entry_hash != newest.entry_hash:
        return [f"entry {newest.seq} is not the one anchored at {newest.at} (the trail was rewritten)"]
    return []
