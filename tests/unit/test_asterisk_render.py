from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livecall_ari.asterisk.render import RenderedFile, dialplan_escape, diff, render_all, write
from livecall_ari.config import load


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = load(tmp_path / "none.toml", environ={})
    s.ari.password = "secret-1"
    s.ami.secret = "secret-2"
    return s


def test_every_template_renders_to_a_livecall_file(settings) -> None:  # type: ignore[no-untyped-def]
    files = {f.name: f.text for f in render_all(settings)}
    assert "extensions_livecall.conf" in files and "ari_livecall.conf" in files
    assert all(name.endswith("_livecall.conf") for name in files)
    assert "password = secret-1" in files["ari_livecall.conf"]
    assert "Stasis(livecall,screen,${EXTEN}" in files["extensions_livecall.conf"]


def test_an_admin_template_overrides_ours(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "ari_livecall.conf.j2").write_text("; mine {{ settings.ari.user }}\n")
    files = {f.name: f.text for f in render_all(settings, override_dir=tmp_path)}
    assert files["ari_livecall.conf"] == "; mine livecall\n"


def test_only_livecall_files_are_written_and_a_diff_is_shown(tmp_path: Path) -> None:
    (tmp_path / "extensions.conf").write_text("; the admin's own\n")
    with pytest.raises(ValueError):
        write(tmp_path, [RenderedFile("extensions.conf", "x")])
    assert (tmp_path / "extensions.conf").read_text() == "; the admin's own\n"
    files = [RenderedFile("x_livecall.conf", "a\n")]
    assert "+a" in diff(tmp_path, files)
    write(tmp_path, files)
    assert diff(tmp_path, files) == ""


def test_organisation_values_are_escaped_in_the_dialplan(settings) -> None:  # type: ignore[no-untyped-def]
    settings.organisation.caller_id = "+441632960000,evil;x"
    text = {f.name: f.text for f in render_all(settings)}["extensions_livecall.conf"]
    assert "+441632960000\\,evil\\;x" in text
    assert "+441632960000,evil" not in text


@given(st.text())
def test_escaped_values_have_no_bare_separators(value: str) -> None:
    out = dialplan_escape(value)
    i = 0
    while i < len(out):
        if out[i] == "\\":
            i += 2
            continue
        assert out[i] not in ",;|$\n\r"
        i += 1
