"""PECR reg 24 in the settings: `livecall init` takes the organisation's name and contact
details as options (asks only on a terminal), `livecall doctor`'s check warns while they are a
placeholder or empty, and the privacy notice names them but never the placeholder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from livecall_ari import config
from livecall_ari.protection.privacy import organisation_check, privacy_notice
from livecall_ari.protection.services import basis_policy, retention_policy

LIVECALL = [sys.executable, "-m", "livecall_ari.cli"]


def init(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIVECALL_CONFIG": str(tmp_path / "livecall.toml"), "LIVECALL_DATA_DIR": str(tmp_path / "data")}
    env = {k: v for k, v in env.items() if not k.startswith("LIVECALL_ORGANISATION_")}
    # No terminal: stdin is not a TTY, as in CI; init must not wait for an answer.
    return subprocess.run([*LIVECALL, "init", *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


def test_init_takes_the_organisation_from_options_and_never_asks_without_a_terminal(tmp_path: Path) -> None:
    plain = init(tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert config.load(tmp_path / "livecall.toml", environ={}).organisation.name == config.PLACEHOLDER_ORGANISATION

    given = init(tmp_path, "--organisation-name", "Acme Windows Ltd", "--contact-number", "0800 046 0000",
                 "--contact-address", "1 High Street, Leeds LS1 1AA")
    assert given.returncode == 0 and "added the organisation's details" in given.stdout, given.stdout + given.stderr
    org = config.load(tmp_path / "livecall.toml", environ={}).organisation
    assert (org.name, org.contact_number, org.contact_address) == ("Acme Windows Ltd", "0800 046 0000", "1 High Street, Leeds LS1 1AA")


def test_the_doctor_warns_while_the_name_is_a_placeholder_or_the_details_are_empty() -> None:
    s = config.Settings()
    check = organisation_check(s)
    assert (check.ok, check.warning) == (False, True) and "placeholder" in check.detail
    s.organisation.name = "Acme Windows Ltd"
    check = organisation_check(s)
    assert (check.ok, check.warning) == (False, True) and "contact_number and contact_address empty" in check.detail
    s.organisation.contact_number, s.organisation.contact_address = "0800 046 0000", "1 High Street\nLeeds LS1 1AA"
    assert organisation_check(s).ok


def test_the_privacy_notice_names_the_contact_details_and_never_the_placeholder() -> None:
    s = config.Settings()
    placeholder = privacy_notice(s, basis_policy(s), retention_policy(s))
    assert config.PLACEHOLDER_ORGANISATION not in placeholder and placeholder.startswith("# How we use call recordings")
    s.organisation.name, s.organisation.contact_number = "Acme Windows Ltd", "0800 046 0000"
    s.organisation.contact_address = "1 High Street\nLeeds LS1 1AA"
    notice = privacy_notice(s, basis_policy(s), retention_policy(s))
    assert "Acme Windows Ltd: 0800 046 0000, 1 High Street, Leeds LS1 1AA." in notice
    assert "- recordings of calls, whatever the call's purpose: legitimate interests" in notice
    s.recording.notice_mode = "opt_in"
    assert "(or your consent, where you pressed 1 to allow the recording)" in privacy_notice(s, basis_policy(s), retention_policy(s))
