"""Render LiveCall's Asterisk configuration from the Jinja templates in asterisk_conf/.

One template per output file: ``asterisk_conf/NAME.conf.j2`` becomes ``NAME.conf`` (every name
ends in ``_livecall``, so an admin's own files are never touched). An admin overrides a template
by putting a file of the same name in their override directory. Rendering never writes outside
the destination's ``*_livecall.conf`` files; the admin adds the ``#include`` lines it prints.
"""

from __future__ import annotations

import difflib
import functools
from importlib import resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import jinja2

from livecall_ari.config import Settings
from livecall_ari.gate.core import CONTEXT_ALLOWED, CONTEXT_BLOCKED, EMERGENCY_NUMBERS, GATED_PURPOSES, PURPOSES
from livecall_ari.recording.core import RecordingPolicy

# Shipped inside the package (a wheel holds them as plain files, so Jinja's loader reads them).
TEMPLATE_DIR = Path(str(resources.files("livecall_ari") / "asterisk_conf"))

# Which stock file includes each generated one.
INCLUDED_FROM = {
    "extensions_livecall.conf": "extensions.conf",
    "ari_livecall.conf": "ari.conf",
    "http_livecall.conf": "http.conf",
    "cdr_custom_livecall.conf": "cdr_custom.conf",
    "pjsip_livecall.conf": "pjsip.conf",
    "features_livecall.conf": "features.conf",
    "manager_livecall.conf": "manager.conf",
    "extensions_supervision_livecall.conf": "extensions.conf",
}


def dialplan_escape(value: object) -> str:
    """Escape a value for use inside a dialplan application argument.

    Asterisk splits arguments on ``,`` and treats ``;`` as a comment, ``|`` as a legacy
    separator, ``\\`` as an escape and ``${``/``$[`` as expressions; a value from the settings
    (an organisation's name, a caller ID) must reach the application as written.
    """
    text = str(value)
    out = []
    for ch in text:
        if ch in "\\,;|$\"'()[]{}":
            out.append("\\" + ch)
        elif ch in "\r\n":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def environment(override_dir: Path | None = None, template_dir: Path = TEMPLATE_DIR) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if override_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(override_dir)))
    loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["dialarg"] = dialplan_escape
    return env


def agi_url(settings: Settings, script: str) -> str:
    """The FastAGI URL the generated dialplan calls for ``script`` (every AGI() goes through here),
    carrying ``[fastagi] secret`` as ``?secret=``: Asterisk sends the path and query as
    ``agi_network_script``, and ``serve`` refuses a request without it.

    Without a secret (a settings file from before it existed) the URL has none, and ``serve``
    refuses to start until ``livecall init`` adds one and the dialplan is rendered again."""
    from livecall_ari.config import ConfigError
    from livecall_ari.fastagi.server import secret_problem

    url = f"agi://{settings.fastagi.host}:{settings.fastagi.port}/{script}"
    secret = settings.fastagi.secret
    if not secret:
        return url
    if (problem := secret_problem(secret)) is not None:
        raise ConfigError(f"[fastagi] secret: {problem}")
    return f"{url}?secret={secret}"


def template_context(settings: Settings, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    policy = RecordingPolicy(settings.recording.policy, settings.recording.notice, settings.recording.on_decline,
                             settings.recording.inbound_policy)
    rec_dir = settings.recordings_dir().rstrip("/")
    context: dict[str, Any] = {
        "settings": settings,
        "contexts": {"allowed": CONTEXT_ALLOWED, "blocked": CONTEXT_BLOCKED},
        "emergency_numbers": sorted(EMERGENCY_NUMBERS),
        "agi_url": functools.partial(agi_url, settings),
        "recordings_dir": dialplan_escape(rec_dir),
        "recorded_purposes": "|".join(p for p in PURPOSES if policy.records(p)),
        "noticed_purposes": "|".join(p for p in PURPOSES if policy.notifies(p)),
        # Their allowed calls present the caller ID whatever the endpoint withholds.
        "gated_purposes": "|".join(GATED_PURPOSES),
        # Each leg beside the mixed file: -in what the called party said, -out what they heard.
        "per_leg_options": "r(${LIVECALL_STEM}-in.wav)t(${LIVECALL_STEM}-out.wav)" if settings.recording.per_leg else "",
        "roleplay_pattern": settings.recording.roleplay_prefix,
        "records_inbound": policy.records_inbound(),
    }
    context.update(extra or {})
    return context


@dataclass(frozen=True)
class RenderedFile:
    name: str
    text: str


def render_all(
    settings: Settings,
    override_dir: Path | None = None,
    template_dir: Path = TEMPLATE_DIR,
    extra: Mapping[str, Any] | None = None,
) -> list[RenderedFile]:
    """Render every top-level ``*.conf.j2`` template."""
    env = environment(override_dir, template_dir)
    context = template_context(settings, extra)
    names = sorted(p.name for p in template_dir.glob("*.conf.j2"))
    if not names:
        raise FileNotFoundError(f"no LiveCall templates (*.conf.j2) in {template_dir}: the package is incomplete")
    return [RenderedFile(name[: -len(".j2")], env.get_template(name).render(context)) for name in names]


def render_dir(base: str, subdir: str, settings: Settings, extra: Mapping[str, Any] | None = None) -> list[RenderedFile]:
    """Render the templates of ``asterisk_conf/BASE/SUBDIR`` (the sandbox's own base files);
    templates there may include others by their path under BASE."""
    root = TEMPLATE_DIR / base
    env = environment(None, root)
    context = template_context(settings, extra)
    if not any((root / subdir).glob("*.j2")):
        raise FileNotFoundError(f"no templates in {root / subdir}: the package is incomplete")
    return [
        RenderedFile(p.name[: -len(".j2")], env.get_template(f"{subdir}/{p.name}").render(context))
        for p in sorted((root / subdir).glob("*.j2"))
    ]


def diff(dest: Path, files: list[RenderedFile]) -> str:
    chunks: list[str] = []
    for f in files:
        target = dest / f.name
        old = target.read_text().splitlines(keepends=True) if target.exists() else []
        chunks.extend(difflib.unified_diff(old, f.text.splitlines(keepends=True), str(target), str(target) + " (new)"))
    return "".join(chunks)


def write(dest: Path, files: list[RenderedFile]) -> list[Path]:
    """Write the rendered files; refuse any name that is not ours."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        if not f.name.endswith("_livecall.conf"):
            raise ValueError(f"refusing to write {f.name}: LiveCall only writes *_livecall.conf files")
        target = dest / f.name
        tmp = target.with_suffix(".conf.tmp")
        tmp.write_text(f.text)
        tmp.replace(target)
        written.append(target)
    return written


def include_lines(files: list[RenderedFile]) -> list[str]:
    return [f"{INCLUDED_FROM.get(f.name, '?')}: #include {f.name}" for f in files]
