import re
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
    assert "Stasis(livecall,screen,${LIVECALL_DIALLED}," in files["extensions_livecall.conf"]


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


# -- dial-string injection (issue 13) ----------------------------------------------------------

def _dialplans(settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {f.name: f.text for f in render_all(settings) if f.name.startswith("extensions")}


def _extensions(text: str) -> list[tuple[str, str, list[str]]]:
    """(context, pattern, the lines of its priorities) for every extension of a dialplan file."""
    out: list[tuple[str, str, list[str]]] = []
    context = ""
    for line in text.splitlines():
        if line.startswith("["):
            context = line.strip("[]")
        elif line.startswith("exten => "):
            out.append((context, line[len("exten => "):].split(",", 1)[0], [line]))
        elif line.startswith(" same => ") and out:
            out[-1][2].append(line)
    return out


def test_the_outbound_context_matches_numbers_with_strict_patterns_only(settings) -> None:  # type: ignore[no-untyped-def]
    from livecall_ari.gate.core import MAX_DIGITS, MIN_DIGITS

    settings.gate.outside_line_prefix = "9"
    outbound = [(p, lines) for c, p, lines in _extensions(_dialplans(settings)["extensions_livecall.conf"])
                if c == "livecall-outbound"]
    patterns = [p for p, _ in outbound]
    strict = {f"_{plus}{'X' * n}" for n in range(MIN_DIGITS, MAX_DIGITS + 1) for plus in ("", "+")}
    # The emergency class (999, 112 and 18000, text relay's emergency number) bypasses the gate.
    # The agent's objection code (dialled just after a call) is the only other extension.
    assert set(patterns) == strict | {"_X.", "_+.", "999", "112", "18000", "9999", "9112", "918000", "*6"}
    assert len(patterns) == len(set(patterns))
    for pattern, lines in outbound:
        text = "\n".join(lines)
        if pattern == "*6":
            assert lines == ["exten => *6,1,Goto(livecall-agent-objection,last,1)"]
        elif pattern in ("_X.", "_+."):
            # The catch-alls refuse: only the gate's "invalid" entry, nothing of the string but digits.
            assert "Goto(livecall-gate,invalid,1)" in text and text.count("${EXTEN}") == 1
        elif pattern in strict:
            # A number goes on only when FILTER() removed nothing from it.
            assert "${IF($[${LEN(${EXTEN})} = ${LEN(${LIVECALL_DIALLED})}]?${LIVECALL_DIALLED}:invalid)}" in text


def test_no_raw_extension_reaches_an_application_in_any_generated_context(settings) -> None:  # type: ignore[no-untyped-def]
    settings.gate.outside_line_prefix = "9"
    for name, text in _dialplans(settings).items():
        for context, pattern, lines in _extensions(text):
            wild = any(ch in pattern for ch in ".!")
            if not wild or context == "livecall-supervision-beep":
                continue  # a strict pattern, or a Local channel LiveCall itself names
            for line in lines:
                for m in re.finditer(r"\$\{EXTEN", line):
                    before = line[: m.start()]
                    assert before.endswith(("FILTER(0-9+,", "FILTER(0-9,", "LEN(")), f"{name} [{context}] {pattern}: {line}"


def test_the_allowed_context_dials_the_gates_number_never_the_extension(settings) -> None:  # type: ignore[no-untyped-def]
    text = _dialplans(settings)["extensions_livecall.conf"]
    [(_, _, allowed)] = [e for e in _extensions(text) if e[0] == "livecall-allowed"]
    body = "\n".join(allowed)
    assert "Dial(PJSIP/${LIVECALL_NUMBER}@livecall-trunk,60,U(livecall-answered^${UNIQUEID}^${LIVECALL_NUMBER}^" in body
    assert "Set(CDR(livecall_number)=${LIVECALL_NUMBER})" in body and "Set(CDR(livecall_decision)=allow)" in body
    assert "Set(LIVECALL_NUMBER=${FILTER(0-9+,${LIVECALL_NUMBER})})" in allowed[0]
    # The gate's entries get the four values the gate body FILTER()ed, nothing else.
    entries = re.findall(r"(?:Stasis\(livecall,screen|AGI\(agi://[^,]*/screen[^,]*),([^)]*)\)", text)
    assert len(entries) == 4  # Stasis and AGI, for a number and for "invalid"
    assert set(entries) == {"${LIVECALL_DIALLED},${LIVECALL_PURPOSE},${LIVECALL_AGENT},${LIVECALL_CALLER_ID}"}
    for variable, allowed_chars in [("PURPOSE", "a-z_"), ("CALLER_ID", "+0-9a-z"), ("AGENT", "-0-9A-Za-z_.")]:
        assert f"Set(LIVECALL_{variable}=${{FILTER({allowed_chars}," in text


def test_feature_codes_use_strict_patterns(settings) -> None:  # type: ignore[no-untyped-def]
    files = _dialplans(settings)
    roleplay = [p for c, p, _ in _extensions(files["extensions_livecall.conf"]) if c == "livecall-roleplay"]
    assert roleplay == [f"_*8{'X' * n}" for n in range(2, 7)]
    supervision = [p for c, p, _ in _extensions(files["extensions_supervision_livecall.conf"]) if c == "livecall-supervision"]
    assert supervision and all(re.fullmatch(r"_\*\d+X{2,6}", p) for p in supervision), supervision


def test_no_generated_line_holds_a_semicolon_asterisk_would_read_as_a_comment(settings) -> None:  # type: ignore[no-untyped-def]
    for f in render_all(settings):
        for line in f.text.splitlines():
            code = line.lstrip()
            if code.startswith(";") or not code:
                continue
            # An unescaped ";" starts a comment: the rest of the line is lost ("No closing parenthesis").
            assert not re.search(r"(?<!\\);", code), f"{f.name}: {line}"
