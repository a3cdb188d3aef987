"""Shared data for the data-protection tests: a real settings file, SQLite database and
recording files in a temp dir, with calls, recordings, notices, list records and CDRs for
two people, so every test can check that one person's data never leaks into the other's."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from livecall_ari import config
from livecall_ari.app import App
from livecall_ari.charges.models import CdrRow
from livecall_ari.gate.models import GateDecision
from livecall_ari.portal.models import CoachingComment, Scorecard
from livecall_ari.protection import audit
from livecall_ari.protection.registry import number_forms, row_id
from livecall_ari.recording.models import NoticeEvent, Recording, RecordingPause
from livecall_ari.screening.services import list_files

UTC = dt.timezone.utc
NOW = dt.datetime(2025, 6, 2, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in London
ALICE = "+442079460018"
BOB = "+442079460019"


def make_app(tmp_path: Path, protection: str = "") -> App:
    """An App on a settings file in ``tmp_path``; ``protection`` is extra TOML for [protection].
    Recordings are kept in ``tmp_path/recordings`` (LiveCall touches no audio outside it)."""
    (tmp_path / "livecall.toml").write_text(f'[organisation]\nname = "Acme Windows Ltd"\n'
                                            f'[recording]\ndir = "{tmp_path / "recordings"}"\n[protection]\n{protection}\n')
    settings = config.load(tmp_path / "livecall.toml", environ={"LIVECALL_DATA_DIR": str(tmp_path)})
    app = App(settings)
    app.database()
    return app


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # Nothing of the outer run's settings (scripts/test exports the sandbox's) may leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECALL_")}
    env.update(LIVECALL_CONFIG=str(tmp_path / "livecall.toml"), LIVECALL_DATA_DIR=str(tmp_path), **extra)
    return env


def livecall(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livecall_ari.cli", *args], env=cli_env(tmp_path, **env),
                          capture_output=True, text=True, check=False)


@dataclass
class Person:
    e164: str
    call_id: str
    recording_id: int
    audio: Path
    audio_bytes: bytes


def add_person(app: App, tmp_path: Path, e164: str, n: int, *, started: dt.datetime = NOW, purpose: str = "marketing",
               tags: str = "") -> Person:
    """One call of ``e164`` with everything LiveCall keeps about it."""
    national = "0" + e164[3:]
    call_id = f"17000000{n:02d}.{n}"
    GateDecision.create(call_id=call_id, agent="2001", dialled="9" + national, number=e164, purpose=purpose,
                        caller_id="+442079460000", decision="allow", reasons="",
                        evidence='{"purpose": "%s", "called": "%s"}' % (purpose, e164), entry="stasis",
                        decided_at=started.replace(tzinfo=None))
    folder = tmp_path / "recordings" / started.strftime("%Y/%m/%d")
    folder.mkdir(parents=True, exist_ok=True)
    audio = folder / f"{call_id}.wav"
    payload = b"RIFF" + os.urandom(3000) + f"said my number is {national}".encode()
    audio.write_bytes(payload)
    (folder / f"{call_id}-in.wav").write_bytes(b"leg " + payload)
    rec = Recording.create(call_id=call_id, agent="2001", number=e164, purpose=purpose, tags=tags, file=str(audio),
                           state="complete", started_at=started.replace(tzinfo=None), duration_ms=60000,
                           size_bytes=len(payload), lawful_basis="legitimate_interests")
    RecordingPause.create(recording=rec, paused_at=started.replace(tzinfo=None), by="2001")
    NoticeEvent.create(call_id=call_id, number=e164, prompt="livecall/notice", played=True,
                       started_at=started.replace(tzinfo=None), duration_ms=4000)
    store = list_files(app).store
    store.add_objection("default", int(e164[1:]), started, "2001", f"asked on call {call_id}, number {national}")
    store.add_consent("default", int(e164[1:]), started - dt.timedelta(days=30), "2001", f"web form for {e164}", "marketing")
    start = int(started.timestamp())
    CdrRow.create(account="default", start_utc=start, record_key=n, end_utc=start + 60, duration=60, billsec=55,
                  number=e164, number_class="uk_geographic", country="GB", uniqueid=call_id, call_id=call_id,
                  cdr_line=f'"","2001","9{national}","livecall-agents","","PJSIP/2001","PJSIP/trunk","Dial","{e164}",60,55',
                  source="/var/log/asterisk/cdr-csv/Master.csv", line_no=n)
    audit.append("supervisor-sue", "recording.play", audit.subject_for_recording(row_id(rec)), {"call_id": call_id}, at=started)
    CoachingComment.create(recording=row_id(rec), agent="2001", author="supervisor-sue", offset_ms=1500,
                           text=f"caller on {national} asked for a callback", created_at=started.replace(tzinfo=None))
    Scorecard.create(recording=row_id(rec), agent="2001", author="supervisor-sue", scores='{"greeting": 4}',
                     note="good notice", created_at=started.replace(tzinfo=None))
    return Person(e164, call_id, row_id(rec), audio, payload)


def everything_mentioning(app: App, e164: str) -> list[str]:
    """Every database cell (any column, as text) and file under the data dir holding the number."""
    db = app.database()
    forms = number_forms(e164)
    found = []
    for table in db.get_tables():
        cursor = db.execute_sql(f'SELECT * FROM "{table}"')
        names = [d[0] for d in cursor.description]
        for row in cursor.fetchall():
            for name, value in zip(names, row):
                text = value.hex() if isinstance(value, bytes) else str(value)
                if any(f in text for f in forms):
                    found.append(f"{table}.{name}: {text[:80]}")
    data_dir = Path(app.settings.data_path())
    for path in data_dir.rglob("*"):
        if path.is_file() and path.suffix not in (".db", ".db-wal", ".db-shm") and not path.name.endswith(("-wal", "-shm")):
            content = path.read_bytes()
            if any(f.encode() in content for f in forms):
                found.append(str(path))
    return found
