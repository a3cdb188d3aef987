"""`livecall doctor`'s checks that need no Asterisk: what they say of the settings they see."""

from __future__ import annotations

from pathlib import Path

from livecall_ari.app import App
from livecall_ari.asterisk.doctor import system_name_check
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
