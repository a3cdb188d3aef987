"""A recording's own lawful basis and the notice's outcomes in both modes (recording/core.py),
and what the prompts say of the organisation (sounds/build.py, PECR reg 24)."""

from __future__ import annotations

import pytest

from livecall_ari.config import OrganisationSettings
from livecall_ari.recording.core import PolicyError, check_notice_mode, notice_outcome, recording_basis
from livecall_ari.sounds.build import prompt_values, spoken_number


def test_a_recording_rests_on_consent_only_when_the_called_party_gave_it() -> None:
    assert recording_basis("legitimate_interests", consented=False) == "legitimate_interests"
    assert recording_basis("legitimate_interests", consented=True) == "consent"
    with pytest.raises(PolicyError, match="recording_lawful_basis"):
        recording_basis("consent", consented=False)


@pytest.mark.parametrize(("mode", "status", "key", "outcome"), [
    ("inform", "TIMEOUT", "", "heard"),
    ("inform", "OK", "1", "declined"),
    ("inform", "OK", "2", "objected"),
    ("inform", "HANGUP", "", "hung_up"),
    ("opt_in", "OK", "1", "consented"),
    ("opt_in", "TIMEOUT", "", "not_consented"),
    ("opt_in", "OK", "7", "not_consented"),
    ("opt_in", "OK", "2", "objected"),
    ("opt_in", "HANGUP", "", "hung_up"),
])
def test_the_notice_outcome(mode: str, status: str, key: str, outcome: str) -> None:
    assert notice_outcome(mode, status, key, decline_key="1", objection_key="2", consent_key="1") == outcome


def test_an_unknown_notice_mode_is_refused_by_name() -> None:
    assert check_notice_mode("opt_in") == "opt_in"
    with pytest.raises(PolicyError, match=r"\[recording\] notice_mode: 'ask'"):
        check_notice_mode("ask")


def test_the_placeholder_name_is_never_announced() -> None:
    values = prompt_values(OrganisationSettings())
    assert values["introduction"] == "" and values["organisation"] == "us"
    assert "Example" not in " ".join(values.values())
    assert prompt_values(OrganisationSettings(name="  "))["introduction"] == ""


def test_the_name_and_contact_details_as_spoken() -> None:
    values = prompt_values(OrganisationSettings(name="Acme Windows Ltd", contact_number="0800 046 0000",
                                                contact_address="1 High Street\nLeeds LS1 1AA"))
    assert values["introduction"] == "This is Acme Windows Ltd. "
    assert values["contact"] == ("You can call us on 0 8 0 0, 0 4 6, 0 0 0 0. "
                                 "You can write to us at 1 High Street, Leeds LS1 1AA.")
    assert spoken_number("+44 800") == "plus 4 4, 8 0 0"
