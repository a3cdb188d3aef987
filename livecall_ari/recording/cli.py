"""``livecall recordings list|show|verify`` and ``livecall sounds build|set``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from livecall_ari.app import App
from livecall_ari.recording.models import NoticeEvent, Recording, RecordingPause


def _service(app: App):  # type: ignore[no-untyped-def]
    from livecall_ari.recording.plugin import build_service

    return build_service(app)


def _id(r: Recording) -> int:
    return int(r.get_id())  # type: ignore[no-untyped-call]


def _row(r: Recording) -> dict[str, object]:
    return {
        "id": _id(r), "call_id": r.call_id, "agent": r.agent, "number": r.number, "purpose": r.purpose,
        "tags": [t for t in r.tags.split(",") if t], "state": r.state, "file": r.file,
        "started_at": str(r.started_at), "ended_at": str(r.ended_at) if r.ended_at else None,
        "duration_ms": r.duration_ms, "size_bytes": r.size_bytes, "sha256": r.sha256,
        "lawful_basis": r.lawful_basis, "retention_until": str(r.retention_until) if r.retention_until else None,
    }


@click.group("recordings")
def recordings() -> None:
    """Call recordings: what is kept, and whether the files are intact."""


@recordings.command("list")
@click.option("--number", default=None, help="Only recordings of calls with this number.")
@click.option("--agent", default=None)
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_(app: App, number: str | None, agent: str | None, limit: int, as_json: bool) -> None:
    """The most recent recordings."""
    app.database()
    query = Recording.select().order_by(Recording.started_at.desc()).limit(limit)
    if number:
        query = query.where(Recording.number.contains(number.lstrip("+0")))
    if agent:
        query = query.where(Recording.agent == agent)
    rows = list(query)
    if as_json:
        click.echo(json.dumps([_row(r) for r in rows], indent=2))
        return
    if not rows:
        click.echo("no recordings")
    for r in rows:
        length = f"{(r.duration_ms or 0) / 1000:.1f} s" if r.duration_ms is not None else "-"
        tags = f" [{r.tags}]" if r.tags else ""
        click.echo(f"{_id(r):>5}  {str(r.started_at)[:19]}  {r.agent:<5} {r.number:<14} {r.purpose:<9} {r.state:<9} {length}{tags}")


@recordings.command("show")
@click.argument("recording_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(app: App, recording_id: int, as_json: bool) -> None:
    """One recording, with its notice and its pauses."""
    app.database()
    r = Recording.get_or_none(Recording.id == recording_id)  # type: ignore[attr-defined]
    if r is None:
        raise click.ClickException(f"no recording {recording_id}")
    data = _row(r)
    data["notice"] = [
        {"prompt": n.prompt, "played": n.played, "started_at": str(n.started_at), "duration_ms": n.duration_ms,
         "key_pressed": n.key_pressed, "outcome": n.outcome}
        for n in NoticeEvent.select().where(NoticeEvent.call_id == r.call_id)
    ]
    data["pauses"] = [{"paused_at": str(p.paused_at), "resumed_at": str(p.resumed_at) if p.resumed_at else None, "by": p.by}
                      for p in RecordingPause.select().where(RecordingPause.recording == r)]
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            click.echo(f"{key:>16}: {value}")


@recordings.command("verify")
@click.pass_obj
def verify(app: App) -> None:
    """Re-check every kept recording's checksum, on this PBX's disk or, once uploaded, in the
    object store (read back whole); report missing or changed files."""
    results = _service(app).verify()
    results, in_store = _verify_uploaded(app, results)
    bad = [(r, verdict) for r, verdict in results if verdict != "ok"]
    for r, verdict in bad:
        click.echo(f"{verdict.upper()}: recording {_id(r)} (call {r.call_id}) {r.file}")
    stored = f" ({in_store} in the object store)" if in_store else ""
    click.echo(f"{len(results)} recordings checked: {len(results) - len(bad)} ok{stored}, {len(bad)} missing or changed")
    if bad:
        raise SystemExit(1)


def _verify_uploaded(app: App, results: list[tuple[Recording, str]]) -> tuple[list[tuple[Recording, str]], int]:
    """The local check's verdicts, with each file not on this disk but uploaded (objects/)
    checked in the store instead; and how many were."""
    from livecall_ari.config import ConfigError
    from livecall_ari.objects.plugin import store_from_settings
    from livecall_ari.objects.services import object_of, verify_object
    from livecall_ari.objects.store import StoreError

    uploaded = [(r, obj) for r, verdict in results if verdict == "missing" and (obj := object_of(_id(r))) is not None]
    if not uploaded:
        return results, 0
    try:
        store = store_from_settings(app.settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if store is None:
        raise click.ClickException(f"{len(uploaded)} recording(s) are in object storage but [storage] backend "
                                   "is not \"s3\" here: set it (and the store's settings) to check them")
    checked: dict[int, str] = {}
    for r, obj in uploaded:
        try:
            checked[_id(r)] = verify_object(store, obj, str(r.sha256))
        except StoreError as exc:  # unreachable, or refused: nothing proven, so no verdict
            raise click.ClickException(f"recording {_id(r)}: {exc}") from None
    return [(r, checked.get(_id(r), verdict)) for r, verdict in results], len(checked)


@click.group("sounds")
def sounds() -> None:
    """The prompts LiveCall plays."""


# Asterisk's sounds folder as Asterisk sees it; found on this host under [asterisk] root.
SOUNDS_DIR = "/usr/share/asterisk/sounds"
_SOUNDS_DEST_HELP = f"Asterisk's sounds folder (default: {SOUNDS_DIR} under [asterisk] root)."


def _sounds_dest(app: App, dest: Path | None) -> Path:
    from livecall_ari.recording.files import on_host

    return dest if dest is not None else on_host(app.settings, SOUNDS_DIR)


@sounds.command("build")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None, help=_SOUNDS_DEST_HELP)
@click.pass_obj
def build(app: App, dest: Path | None) -> None:
    """Speak every prompt in livecall_ari/sounds/prompts.toml into DEST (espeak-ng and sox)."""
    from livecall_ari.sounds.build import SoundsError, build as build_sounds, prompt_values

    dest = _sounds_dest(app, dest)
    try:
        made = build_sounds(dest, values=prompt_values(app.settings.organisation))
    except SoundsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{len(made)} prompts built in {dest}")


@sounds.command("set")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None, help=_SOUNDS_DEST_HELP)
@click.pass_obj
def set_(app: App, name: str, file: Path, dest: Path | None) -> None:
    """Replace prompt NAME (e.g. livecall/notice) with your own recording in any format sox reads."""
    from livecall_ari.sounds.build import SoundsError, install

    dest = _sounds_dest(app, dest)
    try:
        paths = install(name, file, dest)
    except SoundsError as exc:
        raise click.ClickException(str(exc)) from None
    for p in paths:
        click.echo(f"wrote {p}")


commands: list[click.Command] = [recordings, sounds]
