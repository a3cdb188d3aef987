"""``livecall asterisk install`` on a folder shaped like Debian's stock /etc/asterisk: what it
writes, edits and backs up, with which owner and mode, and that a second run changes nothing."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from livecall_ari.asterisk import install as inst
from livecall_ari.asterisk.render import INCLUDED_FROM, render_all
from livecall_ari.cli import main
from livecall_ari.config import Settings, load

EXTENSIONS = """[general]
static=yes

[globals]

[office-phones]
exten => _2XXX,1,Dial(PJSIP/${EXTEN},30)
exten => _0X.,1,Dial(PJSIP/${EXTEN}@mytrunk,60) ; the admin's own route out
; calls from the PSTN
[from-trunk]
exten => _X.,1,Dial(PJSIP/2001,30)
"""

STOCK = {
    "extensions.conf": EXTENSIONS,
    "ari.conf": "[general]\nenabled = yes       ; When set to no, ARI support is disabled.\n",
    "http.conf": "[general]\nservername=Asterisk\n;enabled=yes\nbindaddr=127.0.0.1\n",
    "manager.conf": '[general]\nenabled = yes\nbindaddr = 127.0.0.1\n#include "manager.d/*.conf"\n',
    "cdr_custom.conf": ";[mappings]\n;Master.csv => ${CSV_QUOTE(${CDR(clid)})}\n",
    "features.conf": "[general]\n[featuremap]\n[applicationmap]\n",
}
NOW = dt.datetime(2026, 11, 29, 14, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = load(tmp_path / "none.toml", environ={})
    s.ari.password = "ari-secret-1"
    s.ami.secret = "ami-secret-2"
    return s


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    folder = tmp_path / "etc-asterisk"
    folder.mkdir()
    for name, text in STOCK.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o640)
    return folder


def install(settings: Settings, etc: Path, contexts: list[str]) -> list[inst.FileChange]:
    changes = inst.plan(etc, render_all(settings), contexts)
    inst.apply(changes, inst.owner_in(etc), NOW)
    return changes


def test_install_writes_our_files_adds_each_include_once_and_a_second_run_changes_nothing(settings: Settings, etc: Path) -> None:
    first = install(settings, etc, ["office-phones"])
    assert {c.path.name for c in first if c.ours} == {f.name for f in render_all(settings)}
    for ours, stock in INCLUDED_FROM.items():
        if (etc / ours).exists():
            assert (etc / stock).read_text().count(f"#include {ours}\n") == 1, stock
    assert install(settings, etc, ["office-phones"]) == []
    assert inst.plan(etc, render_all(settings), ["office-phones"]) == []


def test_the_contexts_includes_go_at_its_end_before_the_next_context(settings: Settings, etc: Path) -> None:
    install(settings, etc, ["office-phones"])
    text = (etc / "extensions.conf").read_text()
    office = text.split("[office-phones]")[1].split("[from-trunk]")[0]
    lines = [line.split(";")[0].strip() for line in office.splitlines() if line.split(";")[0].strip()]
    assert lines == [
        "exten => _2XXX,1,Dial(PJSIP/${EXTEN},30)",
        "exten => _0X.,1,Dial(PJSIP/${EXTEN}@mytrunk,60)",
        "include => livecall-outbound", "include => livecall-roleplay", "include => livecall-supervision",
    ]
    assert "include" not in text.split("[from-trunk]")[1].split("; Added by")[0]


def test_only_the_missing_context_includes_are_added() -> None:
    text = "[sales]\nexten => 1,1,NoOp()\ninclude=>livecall-outbound\n"
    out = inst.add_context_includes(text, "sales")
    assert out.count("livecall-outbound") == 1 and "include => livecall-roleplay" in out
    assert inst.add_context_includes(out, "sales") == out


def test_an_include_already_there_in_quotes_or_as_tryinclude_is_not_added_again() -> None:
    assert inst.add_include('[general]\n#include "ari_livecall.conf"\n', "ari_livecall.conf").count("ari_livecall") == 1
    assert inst.add_include("#tryinclude ari_livecall.conf ; ours\n", "ari_livecall.conf").count("ari_livecall") == 1
    assert inst.add_include(";#include ari_livecall.conf\n", "ari_livecall.conf").count("ari_livecall") == 2


def test_a_context_that_is_not_there_is_an_error_naming_it(settings: Settings, etc: Path) -> None:
    with pytest.raises(inst.InstallError, match=r"no context \[call-centre\]"):
        inst.plan(etc, render_all(settings), ["office-phones", "call-centre"])
    assert not (etc / "extensions_livecall.conf").exists()


def test_files_are_owned_like_asterisks_readable_by_its_group_and_edits_keep_a_backup(settings: Settings, etc: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving files to another user needs root")
    for path in etc.iterdir():
        os.chown(path, 4321, 4322)
    (etc / "extensions.conf").chmod(0o644)
    install(settings, etc, ["office-phones"])
    for name in ("extensions_livecall.conf", "ari_livecall.conf", "http_livecall.conf"):
        st = (etc / name).stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 4322, 0o640), name
    edited = (etc / "extensions.conf").stat()
    assert (edited.st_uid, edited.st_gid, stat.S_IMODE(edited.st_mode)) == (4321, 4322, 0o644)
    backup = etc / "extensions.conf.livecall-backup"
    assert backup.read_text() == EXTENSIONS and backup.stat().st_uid == 4321
    # A later change keeps the admin's original backup and makes a dated one.
    (etc / "extensions.conf").write_text((etc / "extensions.conf").read_text() + "\n[sales]\nexten => 1,1,NoOp()\n")
    install(settings, etc, ["office-phones", "sales"])
    assert backup.read_text() == EXTENSIONS
    assert (etc / "extensions.conf.livecall-backup-20261129140000").exists()


def test_an_install_that_could_not_give_the_files_to_asterisk_writes_nothing(
    settings: Settings, etc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changes = inst.plan(etc, render_all(settings), ["office-phones"])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # an admin's own account, not Asterisk's (4321)
    with pytest.raises(inst.InstallError, match="only root can give them away"):
        inst.apply(changes, inst.Owner(4321, 4321), NOW)
    assert not (etc / "extensions_livecall.conf").exists() and (etc / "extensions.conf").read_text() == EXTENSIONS


def test_warnings_for_what_install_cannot_settle(etc: Path) -> None:
    assert inst.warnings(etc) == []
    (etc / "cdr_custom.conf").write_text("[mappings]\nMaster.csv => x\n")
    (etc / "http.conf").write_text("[general]\nenabled=yes\n")
    found = " ".join(inst.warnings(etc))
    assert "already has a [mappings] section" in found and "sets no bindaddr" in found


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {"LIVECALL_CONFIG": str(tmp_path / "livecall.toml"), "LIVECALL_DATA_DIR": str(tmp_path / "data"),
           "LIVECALL_ASTERISK_ROOT": "", "LIVECALL_ASTERISK_RX_COMMAND": "false"}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_command_shows_the_diff_without_secrets_and_dry_run_writes_nothing(tmp_path: Path, etc: Path) -> None:
    assert run(tmp_path, "init")[0] == 0
    before = {p.name: p.read_text() for p in etc.iterdir()}
    code, out, _ = run(tmp_path, "asterisk", "install", "--dest", str(etc), "--context", "office-phones", "--dry-run")
    assert code == 0 and "dry run: nothing written" in out
    assert "+include => livecall-outbound" in out and f"+++ {etc / 'extensions_livecall.conf'}" in out
    secrets = load(tmp_path / "livecall.toml", environ={})
    assert secrets.ari.password not in out and "password = ********" in out
    assert {p.name: p.read_text() for p in etc.iterdir()} == before


def test_the_command_installs_once_then_reports_no_changes(tmp_path: Path, etc: Path) -> None:
    run(tmp_path, "init")
    unit = tmp_path / "livecall.service"
    code, out, _ = run(tmp_path, "asterisk", "install", "--dest", str(etc), "--context", "office-phones", "--no-reload",
                       "--systemd-unit", str(unit))
    assert code == 0 and f"edited {etc / 'extensions.conf'}" in out
    assert "Restart=on-failure" in unit.read_text() and f"wrote {unit}" in out
    code, out, _ = run(tmp_path, "asterisk", "install", "--dest", str(etc), "--context", "office-phones", "--no-reload")
    assert code == 0 and "no changes: LiveCall is already installed" in out and "+" not in out


def test_render_also_writes_its_files_owned_like_asterisks(tmp_path: Path, etc: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving files to another user needs root")
    os.chown(etc / "extensions.conf", 4321, 4322)
    run(tmp_path, "init")
    code, out, _ = run(tmp_path, "asterisk", "render", "--dest", str(etc))
    assert "password = ********" in out and load(tmp_path / "livecall.toml", environ={}).ari.password not in out
    st = (etc / "ari_livecall.conf").stat()
    assert code == 0 and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 4322, 0o640)


def test_the_command_fails_naming_a_missing_context(tmp_path: Path, etc: Path) -> None:
    run(tmp_path, "init")
    code, _, err = run(tmp_path, "asterisk", "install", "--dest", str(etc), "--context", "nope", "--no-reload")
    assert code != 0 and "no context [nope]" in err


def test_the_systemd_unit(tmp_path: Path) -> None:
    run(tmp_path, "init")
    code, out, _ = run(tmp_path, "asterisk", "systemd-unit", "--user", "lc", "--config", "/etc/livecall/livecall.toml")
    assert code == 0
    lines = set(out.splitlines())
    for line in ("User=lc", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "After=network-online.target asterisk.service", "SupplementaryGroups=asterisk", "WantedBy=multi-user.target"):
        assert line in lines, line
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    assert exec_start.endswith("livecall --config /etc/livecall/livecall.toml serve")
    assert f"ReadWritePaths=-{(tmp_path / 'data').absolute()} -" in out
    assert "ProtectHome=yes" in lines or "ProtectHome=read-only" in lines
