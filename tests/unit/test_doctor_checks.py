"""`livecall doctor`'s checks that need no Asterisk: what they say of the settings they see."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from pathlib import Path

import pytest

from livecall_ari.app import App
from livecall_ari.asterisk.doctor import system_name_check
from livecall_ari.asterisk.pbx_checks import (
    CDR_GRACE, cdr_file_check, cdr_file_verdict, gate_path_checks, include_checks, parse_core_settings,
)
from livecall_ari.config import Settings


def app_with(tmp_path: Path, database_url: str) -> App:
    settings = Settings(data_dir=str(tmp_path))
    settings.asterisk.system_name = "pbx-leeds"
    settings.database.url = database_url
    return App(settings)


def test_the_system_name_agrees_with_asterisks() -> None:
    app = app_with(Path("/nonexistent"), "sqlite:////tmp/x.db")
    check = system_name_check(app, {"config": {"name": "pbx-leeds"}, "system": {"version": "22"}})
    assert check.ok and not check.warning


def test_a_different_system_name_is_a_warning_when_the_database_may_be_shared(tmp_path: Path) -> None:
    shared = system_name_check(app_with(tmp_path, "postgresql://livecall@db.example/livecall"), {"config": {"name": ""}})
    assert (shared.ok, shared.warning) == (False, True)
    assert "systemname = pbx-leeds" in shared.detail and "(not set)" in shared.detail and "tell their CDRs apart" in shared.detail
    alone = system_name_check(app_with(tmp_path, "sqlite:////tmp/x.db"), {"config": {"name": "other"}})
    assert alone.ok and "systemname = pbx-leeds" in alone.detail


# ---- the admin's own Asterisk: includes, trunk, gate path, CDR file (pbx_checks) ---------------

NOW = dt.datetime(2026, 11, 29, 14, 0, tzinfo=dt.timezone.utc)


def test_the_cdr_file_verdicts() -> None:
    hour = dt.timedelta(hours=1)
    assert cdr_file_verdict("M.csv", False, False, None, None, NOW)[0]  # no calls yet: not written yet
    missing = cdr_file_verdict("M.csv", False, False, None, NOW - hour, NOW)
    assert not missing[0] and "does not exist, but calls were decided" in missing[1]
    assert not cdr_file_verdict("M.csv", True, False, NOW, None, NOW)[0]
    stale = cdr_file_verdict("M.csv", True, True, NOW - 2 * hour, NOW - hour, NOW)
    assert not stale[0] and "last grew at 2026-11-29 12:00:00 UTC" in stale[1] and "until 2026-11-29 13:00:00 UTC" in stale[1]
    assert cdr_file_verdict("M.csv", True, True, NOW - hour, NOW - 2 * hour, NOW)[0]
    # A decision younger than the grace may be a call still up: its CDR is not written yet.
    assert cdr_file_verdict("M.csv", True, True, NOW - hour, NOW - CDR_GRACE / 2, NOW)[0]


def chroot_app(tmp_path: Path) -> App:
    settings = Settings(data_dir=str(tmp_path / "data"))
    settings.asterisk.root = str(tmp_path / "chroot")
    settings.database.url = f"sqlite:///{tmp_path / 'data' / 'livecall.db'}"
    return App(settings)


def test_the_cdr_file_is_found_through_asterisk_root_and_must_grow_after_decisions(tmp_path: Path) -> None:
    from livecall_ari.gate.models import GateDecision

    app = chroot_app(tmp_path)
    (tmp_path / "data").mkdir()
    now = dt.datetime.now(dt.timezone.utc)
    missing = cdr_file_check(app, now)
    assert missing.ok and str(tmp_path / "chroot/var/log/asterisk/cdr-csv/Master.csv") in missing.detail
    assert "(/var/log/asterisk/cdr-csv/Master.csv as Asterisk sees it)" in missing.detail
    app.database()
    GateDecision.create(call_id="c1", agent="2001", dialled="01132960000", number="+441132960000", purpose="marketing",
                        decision="allow", entry="stasis", decided_at=now - dt.timedelta(hours=1))
    assert not cdr_file_check(app, now).ok
    master = tmp_path / "chroot/var/log/asterisk/cdr-csv/Master.csv"
    master.parent.mkdir(parents=True)
    master.write_text("")
    two_hours_ago = (now - dt.timedelta(hours=2)).timestamp()
    os.utime(master, (two_hours_ago, two_hours_ago))
    stale = cdr_file_check(app, now)
    assert not stale.ok and "Asterisk is writing its CDRs elsewhere" in stale.detail
    os.utime(master, None)
    assert cdr_file_check(app, now).ok


def stock_root(tmp_path: Path) -> Path:
    """A chroot shaped like Debian's: Asterisk runs as asterisk (uid 4321), its files are 0640."""
    root = tmp_path / "chroot"
    (root / "etc/asterisk").mkdir(parents=True)
    (root / "run/asterisk").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nasterisk:x:4321:4322::/var/lib/asterisk:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nasterisk:x:4322:\naudio:x:29:asterisk\n")
    (root / "run/asterisk/asterisk.pid").write_text("1\n")
    (root / "etc/asterisk/extensions.conf").write_text("[office]\n\n#include extensions_livecall.conf\n")
    (root / "etc/asterisk/ari.conf").write_text("[general]\nenabled = yes\n")
    (root / "etc/asterisk/extensions_livecall.conf").write_text("[livecall-outbound]\n")
    (root / "etc/asterisk/ari_livecall.conf").write_text("[livecall]\n")
    for path in [*root.joinpath("etc/asterisk").iterdir(), root / "run/asterisk/asterisk.pid"]:
        path.chmod(0o640)
        os.chown(path, 4321, 4322)
    return root


def test_an_include_asterisk_cannot_read_is_named_with_its_owner(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("files of another owner need root")
    root = stock_root(tmp_path)
    settings = Settings(data_dir=str(tmp_path))
    settings.asterisk.root = str(root)
    readable, unused = include_checks(settings)
    assert readable.ok and (unused.ok, unused.warning) == (False, True)
    assert f"{root}/etc/asterisk/ari_livecall.conf exists but {root}/etc/asterisk/ari.conf has no `#include ari_livecall.conf` line" in unused.detail
    (root / "etc/asterisk/ari.conf").write_text("[general]\nenabled = yes\n#include ari_livecall.conf\n#include nothere.conf\n"
                                                 "#tryinclude optional.conf\n#tryinclude manager_livecall.conf\n")
    os.chown(root / "etc/asterisk/extensions_livecall.conf", 0, 0)  # written by root, as `render` did
    unreadable = include_checks(settings)
    assert len(unreadable) == 1 and not unreadable[0].ok and not unreadable[0].warning
    detail = unreadable[0].detail
    assert (f"extensions.conf includes extensions_livecall.conf, but {root}/etc/asterisk/extensions_livecall.conf is "
            "root:root mode 0640 and Asterisk runs as asterisk (uid 4321): it cannot read it") in detail
    assert f"ari.conf includes nothere.conf, but {root}/etc/asterisk/nothere.conf does not exist" in detail
    assert "optional.conf" not in detail  # a #tryinclude may be missing, unless it is one of LiveCall's files
    assert f"ari.conf includes manager_livecall.conf, but {root}/etc/asterisk/manager_livecall.conf does not exist" in detail
    (root / "etc/asterisk/ari.conf").write_text("[general]\n#include ari_livecall.conf\n")
    os.chown(root / "etc/asterisk/extensions_livecall.conf", 0, 4322)  # group asterisk may read it
    [ok] = include_checks(settings)
    assert ok.ok and "2 included files" in ok.detail and "(asterisk)" in ok.detail


def test_asterisks_own_folders_come_from_core_show_settings() -> None:
    text = ("  Configuration file:          /etc/livecall-sandbox/pbx/asterisk.conf\n"
            "  Configuration directory:     /etc/livecall-sandbox/pbx\n"
            "  Run/Sockets directory:       /run/livecall-sandbox/pbx\n")
    values = parse_core_settings(text)
    assert values["Configuration directory"] == "/etc/livecall-sandbox/pbx"
    assert values["Run/Sockets directory"] == "/run/livecall-sandbox/pbx"


FAKE_RX = '''
import sys
command = sys.argv[-1]
outputs = {outputs!r}
if command in outputs:
    print(outputs[command])
elif command.startswith("dialplan show ") and outputs["route"] == "unreachable":
    sys.exit("Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)")
elif command.startswith("dialplan show "):
    number = command.split()[2].split("@")[0]
    print(outputs["route"].replace("NUMBER", number))
else:
    print("No such command '%s'" % command)
'''


def fake_rx(tmp_path: Path, route: str, endpoints: str) -> Settings:
    """Settings whose rx_command is a small stand-in for `asterisk -rx` printing Asterisk 22's text."""
    script = tmp_path / "fake_rx.py"
    script.write_text(FAKE_RX.format(outputs={
        "pjsip show endpoints": endpoints,
        "pjsip show endpoint 2001": " context                            : office-phones\n",
        "pjsip show endpoint 2002": " context                            : office-phones\n",
        "route": route,
    }))
    settings = Settings(data_dir=str(tmp_path))
    settings.asterisk.rx_command = f"{sys.executable} {script}"
    settings.asterisk.trunk = "mytrunk"
    return settings


ENDPOINTS = """
 Endpoint:  2001                                                 Unavailable   0 of inf
     InAuth:  2001/2001
 Endpoint:  2002                                                 Unavailable   0 of inf
     InAuth:  2002/2002
 Endpoint:  mytrunk                                              Not in use    0 of inf
   Identify:  mytrunk/mytrunk
"""

ADMIN_ROUTE = """[ Context 'office-phones' created by 'pbx_config' ]
  '_0X.' =>         1. Dial(PJSIP/${EXTEN}@mytrunk,60)            [extensions.conf:885]
[ Included context 'livecall-outbound' created by 'pbx_config' ]
  '_X.' =>          1. Goto(livecall-gate,${EXTEN},1)             [extensions_livecall.conf:12]
"""

GATE_ROUTE = """[ Included context 'livecall-outbound' created by 'pbx_config' ]
  '_X.' =>          1. Goto(livecall-gate,${EXTEN},1)             [extensions_livecall.conf:12]
"""


def test_the_doctor_names_the_phones_context_number_and_pattern_that_bypass_the_gate(tmp_path: Path) -> None:
    checks = asyncio.run(gate_path_checks(fake_rx(tmp_path, ADMIN_ROUTE, ENDPOINTS)))
    trunk, path = checks
    assert trunk.ok and "'mytrunk'" in trunk.detail
    assert not path.ok and not path.warning and path.name == "gate in the path of office-phones"
    assert "phones 2001, 2002 (context office-phones): 01132960000 (UK landline) reaches the admin's pattern '_0X.'" in path.detail


def test_the_doctor_passes_when_every_number_reaches_the_gate_and_names_a_missing_trunk(tmp_path: Path) -> None:
    settings = fake_rx(tmp_path, GATE_ROUTE, ENDPOINTS.replace("mytrunk", "othertrunk"))
    trunk, path = asyncio.run(gate_path_checks(settings))
    assert not trunk.ok and "[asterisk] trunk is 'mytrunk', which is not a PJSIP endpoint" in trunk.detail
    assert "endpoints: 2001, 2002, othertrunk" in trunk.detail
    assert path.ok and "reach LiveCall's gate" in path.detail


def test_cdr_import_without_a_file_reads_the_cdr_file_through_asterisk_root(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from livecall_ari.cli import main

    master = tmp_path / "chroot/var/log/asterisk/cdr-csv/Master.csv"
    env = {"LIVECALL_CONFIG": str(tmp_path / "livecall.toml"), "LIVECALL_DATA_DIR": str(tmp_path / "data"),
           "LIVECALL_ASTERISK_ROOT": str(tmp_path / "chroot")}
    missing = CliRunner().invoke(main, ["cdr", "import"], env=env)
    assert missing.exit_code != 0 and f"{master} ([charges] cdr_file /var/log/asterisk/cdr-csv/Master.csv" in missing.stderr
    master.parent.mkdir(parents=True)
    master.write_text('"acc1","2001","07700900123","livecall-agents","x","PJSIP/2001-01","PJSIP/trunk-02","Dial","x",'
                      '"2025-06-03 10:00:00","2025-06-03 10:00:05","2025-06-03 10:01:10",70,65,"ANSWERED","DOCUMENTATION",'
                      '"1748941200.1",""\n')
    imported = CliRunner().invoke(main, ["cdr", "import"], env=env)
    assert imported.exit_code == 0 and f"{master}: 1 lines read: 1 new records" in imported.stdout
    # A host path that already lies under the root is taken as it is, not mapped twice: the same
    # file, so its import resumes where the first one ended.
    again = CliRunner().invoke(main, ["cdr", "import"], env={**env, "LIVECALL_CHARGES_CDR_FILE": str(master)})
    assert again.exit_code == 0 and f"{master}: 0 lines read (resumed at line 2)" in again.stdout


def test_a_question_asterisk_did_not_answer_is_a_warning_not_a_missing_route(tmp_path: Path) -> None:
    _, path = asyncio.run(gate_path_checks(fake_rx(tmp_path, "unreachable", ENDPOINTS)))
    assert (path.ok, path.warning) == (False, True)
    assert "could not ask Asterisk where 12 numbers go from office-phones" in path.detail and "asterisk.ctl" in path.detail
    nowhere = "There is no existence of NUMBER@office-phones extension\n"
    _, path = asyncio.run(gate_path_checks(fake_rx(tmp_path, nowhere, ENDPOINTS)))
    assert (path.ok, path.warning) == (False, False) and "no outside number reaches LiveCall's gate" in path.detail


def test_sounds_go_to_asterisks_sounds_folder_under_asterisk_root(tmp_path: Path) -> None:
    import shutil
    import wave

    from click.testing import CliRunner

    from livecall_ari.cli import main

    if shutil.which("sox") is None:
        pytest.skip("needs sox")
    recording = tmp_path / "mine.wav"
    with wave.open(str(recording), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000)
    env = {"LIVECALL_CONFIG": str(tmp_path / "livecall.toml"), "LIVECALL_DATA_DIR": str(tmp_path / "data"),
           "LIVECALL_ASTERISK_ROOT": str(tmp_path / "chroot")}
    result = CliRunner().invoke(main, ["sounds", "set", "livecall/notice", str(recording)], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "chroot/usr/share/asterisk/sounds/livecall/notice.custom").exists()
