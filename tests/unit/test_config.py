from pathlib import Path

import pytest

from livecall_ari.config import ConfigError, dump, load


def test_defaults_bind_to_loopback_and_have_no_password(tmp_path: Path) -> None:
    s = load(tmp_path / "missing.toml", environ={})
    assert s.ari.url.startswith("http://127.0.0.1") and s.fastagi.host == "127.0.0.1"
    assert s.ari.password == ""


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    f = tmp_path / "livecall.toml"
    f.write_text('[ari]\npassword = "from-file"\n[fastagi]\nport = 4000\n')
    s = load(f, environ={"LIVECALL_FASTAGI_PORT": "4600", "LIVECALL_DATABASE_URL": "postgresql://db/livecall",
                         "LIVECALL_GATE_BLOCK_NUMBERS": "1, 2"})
    assert (s.ari.password, s.fastagi.port, s.database_url(), s.gate.block_numbers) == (
        "from-file", 4600, "postgresql://db/livecall", ["1", "2"])


def test_the_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    s = load(tmp_path / "x.toml", environ={"LIVECALL_DATA_DIR": str(tmp_path)})
    assert s.database_url() == f"sqlite:///{tmp_path}/livecall.db"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[fastagi]\nport = \"many\"\n", "[fastagi].port: expected a whole number"),
        ("[ari]\npasword = \"x\"\n", "unknown setting 'pasword'"),
        ("[nope]\n", "unknown section 'nope'"),
        ("[ari\n", "livecall.toml"),
    ],
)
def test_bad_settings_say_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "livecall.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(f, environ={})
    assert message in str(err.value) and str(f) in str(err.value)


def test_dump_round_trips(tmp_path: Path) -> None:
    s = load(tmp_path / "a.toml", environ={})
    s.ari.password = 'p"w\\d'
    s.gate.block_numbers = ["07700900123"]
    f = tmp_path / "b.toml"
    f.write_text(dump(s))
    again = load(f, environ={})
    assert again.ari.password == 'p"w\\d' and again.gate.block_numbers == ["07700900123"]
