"""Inbound calls without Asterisk: the answering endpoint from a channel name, the inbound policy,
the generated [livecall-inbound] context (present only with a destination, escaped, recorded
or not), the install's include in the trunk's context, and the books against a real SQLite
database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from livecall_ari.asterisk import install as inst
from livecall_ari.asterisk.render import render_all
from livecall_ari.config import Settings, load
from livecall_ari.gate.models import GateDecision
from livecall_ari.recording.core import PolicyError, RecordingPolicy, answering_endpoint
from livecall_ari.recording.inbound import InboundCalls
from livecall_ari.recording.models import Recording
from tests.unit.test_asterisk_install import STOCK
from tests.unit.test_recording_services import NOW, put, service


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = load(tmp_path / "none.toml", environ={})
    s.ari.password, s.ami.secret, s.fastagi.secret = "ari-secret-1", "ami-secret-2", "agi-secret-3-long-enough"
    return s


def dialplan(settings: Settings) -> str:
    [text] = [f.text for f in render_all(settings) if f.name == "extensions_livecall.conf"]
    return text


def inbound_context(text: str) -> str:
    return text.split("[livecall-inbound]\n")[1].split("\n[")[0]


@pytest.mark.parametrize("channel, endpoint", [
    ("PJSIP/2001-0000002a", "2001"),
    ("PJSIP/reception-desk-00000003", "reception-desk"),
    ("PJSIP/1001-00000003&PJSIP/1002-00000004", ""),  # not one channel's name
    ("Local/2001@from-internal-00000001;1", ""),
    ("SIP/2001-0000001", ""),
    ("PJSIP/2001", ""),
    ("", ""),
])
def test_the_answering_endpoint_is_a_pjsip_channels_endpoint(channel: str, endpoint: str) -> None:
    assert answering_endpoint(channel) == endpoint


def test_the_inbound_policy_is_all_or_none() -> None:
    assert RecordingPolicy(inbound="all").records_inbound() and not RecordingPolicy(inbound="none").records_inbound()
    with pytest.raises(PolicyError, match=r"\[recording\] inbound_policy: 'some' is not one of all, none"):
        RecordingPolicy(inbound="some")


def test_no_inbound_context_without_a_destination(settings: Settings) -> None:
    assert "[livecall-inbound]" not in dialplan(settings)


def test_the_inbound_context_notifies_records_and_goes_to_the_destination(settings: Settings) -> None:
    settings.inbound.destination_context = "reception"
    settings.inbound.destination_extension = "100"
    body = inbound_context(dialplan(settings))
    lines = [line.strip() for line in body.splitlines() if line.strip() and not line.strip().startswith(";")]
    apps = [line.split(",", 1)[1] if line.startswith("exten") else line.removeprefix("same => n,").split("(")[0] for line in lines]
    # The recording starts before the notice (it holds it); the call goes on only after it.
    order = [apps.index(name) for name in ("MixMonitor", "Playback", "Goto")]
    assert order == sorted(order), apps
    assert "Playback(livecall/inbound-notice)" in body
    assert "Goto(reception,100,1)" in body
    assert "agi://127.0.0.1:4573/inbound-start?secret=agi-secret-3-long-enough" in body
    # Only FILTER()ed values reach an application: the DID and the caller's number.
    assert "Set(LIVECALL_DID=${FILTER(0-9+,${EXTEN})})" in body and "${EXTEN}," not in body.replace("${FILTER(0-9+,${EXTEN})}", "")


def test_the_destination_defaults_to_the_did_and_is_escaped(settings: Settings) -> None:
    settings.inbound.destination_context = "recep,tion;x"
    body = inbound_context(dialplan(settings))
    assert "Goto(recep\\,tion\\;x,${LIVECALL_DID},1)" in body


def test_with_inbound_policy_none_the_caller_hears_the_notice_and_nothing_is_recorded(settings: Settings) -> None:
    settings.inbound.destination_context = "reception"
    settings.recording.inbound_policy = "none"
    body = inbound_context(dialplan(settings))
    assert "MixMonitor" not in body and "Playback(livecall/inbound-notice)" in body


def test_install_includes_the_inbound_context_in_the_trunks_context_once(settings: Settings, tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    for name, text in STOCK.items():
        (etc / name).write_text(text)
    settings.inbound.destination_context = "office-phones"
    changes = inst.plan(etc, render_all(settings), [], inbound_context="from-trunk")
    inst.apply(changes, inst.owner_in(etc), NOW)
    text = (etc / "extensions.conf").read_text()
    trunk = text.split("[from-trunk]")[1].split("; Added by")[0]
    assert [line.split(";")[0].strip() for line in trunk.splitlines() if line.split(";")[0].strip()] == [
        "exten => _X.,1,Dial(PJSIP/2001,30)", "include => livecall-inbound"]
    assert "livecall-inbound" not in text.split("[from-trunk]")[0]
    assert inst.plan(etc, render_all(settings), [], inbound_context="from-trunk") == []


def test_an_inbound_call_is_booked_with_the_callers_number_and_then_its_agent(tmp_path: Path) -> None:
    recordings = service(tmp_path, [])
    books = InboundCalls(recordings, "default", {"02079460555": "+442079460555"}.get, clock=lambda: NOW)
    put(tmp_path, "in-1", 2.0)
    path = recordings.folder.confine("/var/spool/asterisk/monitor/livecall/2026/11/27/in-1.wav")

    assert books.started("in-1", "02079460555", "01134961001", path) == "+442079460555"
    assert books.started("in-1", "02079460555", "01134961001", path) == "+442079460555"  # reported twice: one row
    assert books.answered_by("in-1", "PJSIP/1001-00000003") == "1001"
    assert books.answered_by("in-1", "PJSIP/1002-00000004") == "1002"  # a later report changes nothing

    [call] = GateDecision.select().where(GateDecision.call_id == "in-1")
    assert (call.decision, call.number, call.dialled, call.agent, call.purpose, call.entry) == (
        "inbound", "+442079460555", "01134961001", "1001", "inbound", "inbound")
    row = recordings.finish("in-1", settle_seconds=1, at_hangup=False)
    assert row is not None
    assert (row.direction, row.number, row.agent, row.purpose, row.state) == ("inbound", "+442079460555", "1001", "inbound", "complete")
    assert row.retention_until == dt.date(2027, 11, 27)


def test_a_withheld_caller_is_booked_without_a_number_and_unrecorded_calls_have_no_recording(tmp_path: Path) -> None:
    recordings = service(tmp_path, [])
    books = InboundCalls(recordings, "default", lambda caller: None, clock=lambda: NOW)
    assert books.started("in-2", "", "01134961001", None) == ""
    assert books.started("in-3", "anonymous", "01134961001", None) == ""
    assert [c.number for c in GateDecision.select().order_by(GateDecision.call_id)] == ["", ""]
    assert Recording.select().count() == 0


def test_the_calls_search_filters_inbound_calls() -> None:
    from livecall_ari.portal.calls import parse_filters

    assert parse_filters({"decision": "inbound"}, lambda raw: None)[0].decision == "inbound"
    assert parse_filters({"decision": "answered"}, lambda raw: None)[0].decision == ""


def test_the_catch_up_books_an_inbound_calls_file_with_the_callers_number(tmp_path: Path) -> None:
    # inbound-start booked the call (the call log row) but its recording row was lost: the
    # catch-up finds the file and books it as the inbound call it is, never with the DID.
    recordings = service(tmp_path, [])
    GateDecision.create(call_id="in-4", agent="1001", dialled="01134961001", number="+442079460555", purpose="inbound",
                        decision="inbound", entry="inbound", decided_at=NOW)
    put(tmp_path, "in-4", 1.5, age_s=3600)

    assert recordings.reconcile()["registered"] == 1

    row = Recording.get(Recording.call_id == "in-4")
    assert (row.direction, row.number, row.agent, row.purpose, row.state) == ("inbound", "+442079460555", "1001", "inbound", "complete")


def test_the_doctor_checks_the_inbound_context_and_its_destination() -> None:
    from livecall_ari.asterisk.inbound_checks import judge_inbound
    from livecall_ari.config import InboundSettings

    missing_context = "There is no existence of 'reception' context\nCommand 'dialplan show reception' failed.\n"
    shown = "[ Context 'reception' created by 'pbx_config' ]\n  '100' =>  1. Dial(PJSIP/100)\n"
    assert judge_inbound(InboundSettings(), None, None) is None  # inbound calls off: nothing to say
    orphan = judge_inbound(InboundSettings(trunk_context="from-trunk"), None, None)
    assert orphan is not None and not orphan.ok and "destination_context is empty" in orphan.detail
    on = InboundSettings(destination_context="reception", destination_extension="100")
    unasked = judge_inbound(on, None, None)
    assert unasked is not None and unasked.warning
    not_loaded = judge_inbound(on, "There is no existence of 'livecall-inbound' context\n", shown)
    assert not_loaded is not None and not not_loaded.ok and "not loaded" in not_loaded.detail
    nowhere = judge_inbound(on, "[ Context 'livecall-inbound' ]", missing_context)
    assert nowhere is not None and not nowhere.ok and not nowhere.warning and "100@reception" in nowhere.detail
    fine = judge_inbound(on, "[ Context 'livecall-inbound' ]", shown)
    assert fine is not None and fine.ok and "100@reception" in fine.detail


def test_the_inbound_notice_names_the_organisation_and_never_a_placeholder() -> None:
    from livecall_ari.config import OrganisationSettings
    from livecall_ari.sounds.build import load_prompts, prompt_values

    text = load_prompts()["livecall"]["inbound-notice"]
    named = text.format_map(prompt_values(OrganisationSettings(name="Acme Claims Ltd")))
    assert named.startswith("Thank you for calling Acme Claims Ltd.") and "recorded for training and monitoring" in named
    placeholder = text.format_map(prompt_values(OrganisationSettings()))
    assert OrganisationSettings().name not in placeholder and placeholder.startswith("Thank you for calling us.")
