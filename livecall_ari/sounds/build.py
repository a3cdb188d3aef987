"""Build the prompt files from prompts.toml (beside this module) with espeak-ng and sox.

Each prompt becomes ``DEST/<folder>/<name>.ulaw`` and ``.alaw`` (8 kHz, mono): a G.711 channel
plays one of them without transcoding. A prompt is rebuilt only when its text changes (the text's
hash is kept beside it), so building is cheap once done.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

from livecall_ari.config import OrganisationSettings

PROMPTS_FILE = Path(__file__).with_name("prompts.toml")
FORMATS = {"ulaw": "mu-law", "alaw": "a-law"}
# Prompts are read by Asterisk, which runs as another user: world-readable whatever the umask
# (an admin's 077 included). They hold no personal data.
PROMPT_MODE = 0o644
FOLDER_MODE = 0o755


def _folder(path: Path) -> None:
    """A folder Asterisk can search; one that is already there keeps the admin's mode."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(FOLDER_MODE)


class SoundsError(Exception):
    pass


def spoken_number(number: str) -> str:
    """A phone number as espeak-ng should say it: digit by digit ("0800 123" as "0 8 0 0, 1 2 3")."""
    groups = [" ".join(ch for ch in group if ch.isdigit() or ch == "+").replace("+", "plus") for group in number.split()]
    return ", ".join(g for g in groups if g)


def prompt_values(organisation: OrganisationSettings) -> dict[str, str]:
    """What prompts.toml's ``{organisation}``, ``{introduction}`` and ``{contact}`` become.

    A placeholder or empty name is never announced (PECR reg 24 wants the real one): the
    introduction is then left out and ``{organisation}`` is "us"; `livecall doctor` warns."""
    named = organisation.named()
    name = organisation.name.strip()
    parts = []
    if organisation.contact_number.strip():
        parts.append(f"You can call us on {spoken_number(organisation.contact_number)}.")
    if organisation.contact_address.strip():
        address = ", ".join(line.strip() for line in organisation.contact_address.splitlines() if line.strip())
        parts.append(f"You can write to us at {address}.")
    return {
        "organisation": name if named else "us",
        "introduction": f"This is {name}. " if named else "",
        "contact": " ".join(parts) or "Our contact details are on our website.",
    }


def load_prompts(path: Path = PROMPTS_FILE) -> dict[str, dict[str, str]]:
    data = tomllib.loads(path.read_text())
    return {folder: {str(k): str(v) for k, v in items.items()} for folder, items in data.items()}


def convert(source: Path, dest_stem: Path) -> None:
    """Convert any audio file sox reads into the G.711 files Asterisk plays."""
    for ext, encoding in FORMATS.items():
        out = dest_stem.with_suffix("." + ext)
        cmd = ["sox", str(source), "-r", "8000", "-c", "1", "-e", encoding, "-t", "raw", str(out)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise SoundsError(f"sox could not convert {source}: {result.stderr.strip()}")
        out.chmod(PROMPT_MODE)


def speak(text: str, dest_stem: Path) -> None:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        raise SoundsError("building prompts needs espeak-ng and sox (apt-get install espeak-ng sox)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        result = subprocess.run(["espeak-ng", "-v", "en-gb", "-s", "160", "-w", str(wav), text], capture_output=True, text=True)
        if result.returncode != 0:
            raise SoundsError(f"espeak-ng failed: {result.stderr.strip()}")
        convert(wav, dest_stem)


def build(dest: Path, prompts_file: Path = PROMPTS_FILE, values: dict[str, str] | None = None) -> list[Path]:
    """Build every prompt under ``dest`` (``{organisation}`` in a text takes ``values``);
    returns the files (re)built now. A prompt replaced with ``install`` is left alone."""
    built: list[Path] = []
    _folder(dest)
    for folder, prompts in load_prompts(prompts_file).items():
        _folder(dest / folder)
        for name, template in prompts.items():
            text = template.format_map({**prompt_values(OrganisationSettings(name="")), **(values or {})})
            stem = dest / folder / name
            if stem.with_suffix(".custom").exists():
                continue
            digest = hashlib.sha256(text.encode()).hexdigest()
            marker = stem.with_suffix(".text-sha256")
            if marker.exists() and marker.read_text() == digest and all(
                stem.with_suffix("." + ext).exists() for ext in FORMATS
            ):
                continue
            speak(text, stem)
            marker.write_text(digest)
            marker.chmod(PROMPT_MODE)
            built.append(stem)
    return built


def install(name: str, source: Path, dest: Path) -> list[Path]:
    """Install an organisation's own recording as prompt ``name`` (``folder/prompt``)."""
    folder, _, prompt = name.rpartition("/")
    if not folder or not prompt or ".." in name or name.startswith("/"):
        raise SoundsError(f"{name!r}: a prompt name is folder/name, e.g. livecall/notice")
    if shutil.which("sox") is None:
        raise SoundsError("converting a recording needs sox (apt-get install sox)")
    stem = dest / folder / prompt
    _folder(stem.parent)
    convert(source, stem)
    # Marks the prompt as the organisation's own, so `sounds build` keeps it.
    stem.with_suffix(".custom").write_text(str(source))
    return [stem.with_suffix("." + ext) for ext in FORMATS]
