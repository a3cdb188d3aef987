"""Recording's pure core: which calls are recorded and carry the notice, where a recording's
file goes, and what a file's bytes say about it. (Its lawful basis and retention date are the
data-protection policy's: protection.core.)

No I/O and no clock here: the service passes in times and bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from dataclasses import dataclass

from livecall_ari.gate.core import GATED_PURPOSES

RECORD_POLICIES = ("all", "marketing", "none")
NOTICE_POLICIES = ("all", "marketing", "service", "none")
DECLINE_ACTIONS = ("unrecorded", "end")

# The purpose a role-play call is recorded under, and the tag it carries.
TRAINING = "training"
# The purpose (and direction) of a call that rang the organisation: [livecall-inbound].
INBOUND = "inbound"
INBOUND_POLICIES = ("all", "none")

class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class RecordingPolicy:
    record: str = "all"
    notice: str = "all"
    on_decline: str = "unrecorded"
    inbound: str = "all"

    def __post_init__(self) -> None:
        if self.inbound not in INBOUND_POLICIES:
            raise PolicyError(f"[recording] inbound_policy: {self.inbound!r} is not one of {', '.join(INBOUND_POLICIES)}")
        if self.record not in RECORD_POLICIES:
            raise PolicyError(f"[recording] policy: {self.record!r} is not one of {', '.join(RECORD_POLICIES)}")
        if self.notice not in NOTICE_POLICIES:
            raise PolicyError(f"[recording] notice: {self.notice!r} is not one of {', '.join(NOTICE_POLICIES)}")
        if self.on_decline not in DECLINE_ACTIONS:
            raise PolicyError(f"[recording] on_decline: {self.on_decline!r} is not one of {', '.join(DECLINE_ACTIONS)}")

    def records(self, purpose: str) -> bool:
        if purpose == TRAINING:
            return True
        return self.record == "all" or (self.record == "marketing" and purpose in GATED_PURPOSES)

    def notifies(self, purpose: str) -> bool:
        if purpose == TRAINING:
            return False  # delegates know: it is a training exercise
        return self.notice == "all" or self.notice == purpose or (self.notice == "marketing" and purpose in GATED_PURPOSES)

    def records_inbound(self) -> bool:
        """Whether calls into [livecall-inbound] are recorded (the caller hears the notice anyway)."""
        return self.inbound == "all"


def answering_endpoint(channel: str) -> str:
    """The endpoint of the channel that answered an inbound call (Dial's ``DIALEDPEERNAME``,
    ``PJSIP/2001-0000002a``): ``2001``, or "" when it is not a PJSIP channel."""
    tech, _, rest = channel.partition("/")
    if tech != "PJSIP" or "-" not in rest:
        return ""
    endpoint = rest.rsplit("-", 1)[0]
    return endpoint if endpoint and all(ch.isalnum() or ch in "-_." for ch in endpoint) else ""


NOTICE_MODES = ("inform", "opt_in")
CONSENT = "consent"


def check_notice_mode(mode: str) -> str:
    if mode not in NOTICE_MODES:
        raise PolicyError(f"[recording] notice_mode: {mode!r} is not one of {', '.join(NOTICE_MODES)}")
    return mode


def recording_basis(configured: str, consented: bool) -> str:
    """A recording's own lawful basis (UK GDPR art. 6(1)): "consent" only when the called party
    gave it by pressing the consent key (art. 7(1): the controller must be able to show it),
    otherwise the configured basis, which may not claim consent nobody gave."""
    if consented:
        return CONSENT
    if configured == CONSENT:
        raise PolicyError('[protection] recording_lawful_basis: "consent" is not a basis a recording can be '
                          'given in advance; use [recording] notice_mode = "opt_in" to ask for it')
    return configured


def notice_outcome(mode: str, status: str, key: str, decline_key: str, objection_key: str, consent_key: str) -> str:
    """What the called party's answer to the notice means: ``objected`` (reg 21(1)(a)),
    ``declined`` (inform mode's decline key), ``consented`` or ``not_consented`` (opt_in mode:
    nothing pressed is no consent), ``heard`` or ``hung_up``."""
    if key and key == objection_key:
        return "objected"
    if mode == "opt_in":
        return "consented" if key and key == consent_key else ("hung_up" if status == "HANGUP" else "not_consented")
    if key and key == decline_key:
        return "declined"
    return "hung_up" if status == "HANGUP" else "heard"


def relative_path(call_id: str, at: dt.datetime) -> str:
    """``YYYY/MM/DD/<call id>.wav`` (UTC date): the name a recording gets in the recordings dir."""
    if at.tzinfo is None:
        raise ValueError("a recording's time must carry a time zone")
    day = at.astimezone(dt.timezone.utc)
    safe = "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in call_id)
    return f"{day:%Y/%m/%d}/{safe}.wav"


@dataclass(frozen=True)
class AudioFacts:
    size_bytes: int
    duration_ms: int
    sha256: str


def wav_duration_ms(data: bytes) -> int:
    """Duration of a RIFF/WAVE file from its header and data chunk (0 if it is not one)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return 0
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"fmt " and pos + 16 <= len(data):
            byte_rate = struct.unpack("<I", data[pos + 16:pos + 20])[0]
        elif chunk == b"data":
            # MixMonitor may leave the size field 0 if it stops abruptly: use what is there.
            available = min(size or len(data), len(data) - pos - 8)
            return int(available * 1000 / byte_rate) if byte_rate else 0
        pos += 8 + size + (size & 1)
    return 0


def audio_facts(data: bytes) -> AudioFacts:
    return AudioFacts(len(data), wav_duration_ms(data), hashlib.sha256(data).hexdigest())


# Below this much free space (about a second of a call with its legs) the recordings disk
# counts as full: a file closed now was most likely cut short by a failed write (Asterisk logs
# "No space left on device" and carries on).
DISK_FULL_BYTES = 64 * 1024


def cut_short(duration_ms: int, ran_ms: int | None, free_bytes: int) -> str | None:
    """Why a recording just closed is not the whole call, or None if nothing says so.

    ``ran_ms`` is how long the recording ran (from its start to the hangup), ``free_bytes``
    what its disk has left. MixMonitor records without a break (a pause records silence), so
    audio much shorter than the time it ran means writes failed. When that time is not known
    (a file booked long after its call), a full disk is reason enough to doubt the file.
    """
    full = free_bytes < DISK_FULL_BYTES
    disk = f"the recordings disk is full ({free_bytes:,} bytes free)"
    if ran_ms is None:
        return disk if full else None
    if duration_ms < ran_ms - max(3000, ran_ms // 10):
        return f"{duration_ms / 1000:.1f} s of audio for {ran_ms / 1000:.1f} s of recording" + (f"; {disk}" if full else "")
    return None
