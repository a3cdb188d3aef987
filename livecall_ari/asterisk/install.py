"""``livecall asterisk install``: put LiveCall into an Asterisk an admin already runs.

Plans every change first as text (the rendered ``*_livecall.conf`` files, one ``#include`` line
in each stock file that needs it, ``include =>`` lines at the end of each phones' context), so
the admin sees one diff and ``--dry-run`` writes nothing. Applying the plan writes each file
owned like the files already there and readable by Asterisk (mode 0640: a root-owned 0640 file
is invisible to an Asterisk running as its own user, which then logs "listed as a #include but
it does not exist"), and keeps a backup of every file it edits. Running it twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from livecall_ari.asterisk.render import INCLUDED_FROM, RenderedFile

# Added at the end of each context the admin names: outbound calls, role-play, supervision codes.
CONTEXT_INCLUDES = ("livecall-outbound", "livecall-roleplay", "livecall-supervision")
# Added at the end of the trunk's context ([inbound] trunk_context): the inbound notice and recording.
INBOUND_INCLUDES = ("livecall-inbound",)
MODE = 0o640


class InstallError(Exception):
    """Something the admin must fix before LiveCall can be installed (says which file and what)."""


@dataclass(frozen=True)
class FileChange:
    """One file's text before and after; ``old`` is None for a file that does not exist yet."""

    path: Path
    old: str | None
    new: str
    ours: bool  # a *_livecall.conf file (written whole) rather than an admin's file (edited)

    def diff(self, secrets: tuple[str, ...] = ()) -> str:
        """The unified diff, with each of ``secrets`` shown as ******** (terminals get logged)."""
        old = redact(self.old or "", secrets).splitlines(keepends=True)
        new = redact(self.new, secrets).splitlines(keepends=True)
        label = str(self.path)
        return "".join(difflib.unified_diff(old, new, label if self.old is not None else "/dev/null", label))


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


def _active(line: str) -> str:
    """A config line without its comment (Asterisk comments start at an unescaped ``;``)."""
    return re.split(r"(?<!\\);", line, maxsplit=1)[0].strip()


def has_include(text: str, name: str) -> bool:
    pattern = re.compile(r'#\s*(?:try)?include\s+"?' + re.escape(name) + r'"?\s*$')
    return any(pattern.match(_active(line)) for line in text.splitlines())


def add_include(text: str, name: str) -> str:
    """``text`` with ``#include NAME`` appended, unless it is already there."""
    if has_include(text, name):
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return f"{text}\n; Added by `livecall asterisk install`\n#include {name}\n"


_HEADER = re.compile(r"^\[(?P<name>[^\]]+)\]")


def add_context_includes(text: str, context: str, includes: tuple[str, ...] = CONTEXT_INCLUDES) -> str:
    """``text`` with ``include => X`` for each missing X at the end of ``[context]``.

    The lines go after the context's last extension: its own patterns still win over them, which
    is why the doctor checks what each number reaches. InstallError when there is no such context.
    """
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if (m := _HEADER.match(line)) and m["name"].strip() == context), None)
    if start is None:
        raise InstallError(f"extensions.conf has no context [{context}] (is it in a file extensions.conf includes? "
                           f"then add `include => livecall-outbound` there yourself)")
    end = len(lines)
    for i in range(start + 1, len(lines)):
        if _HEADER.match(lines[i]) or _active(lines[i]).startswith("#"):
            end = i
            break
    body = [_active(line).replace(" ", "").replace("\t", "") for line in lines[start + 1 : end]]
    missing = [name for name in includes if f"include=>{name}" not in body]
    if not missing:
        return text
    last = max((i for i in range(start, end) if _active(lines[i])), default=start)
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    added = [f"include => {name}  ; added by `livecall asterisk install`\n" for name in missing]
    return "".join(lines[: last + 1] + added + lines[last + 1 :])


def plan(dest: Path, files: list[RenderedFile], contexts: list[str], inbound_context: str = "") -> list[FileChange]:
    """Every change install would make in ``dest``, as text; changes nothing on disk.
    ``inbound_context`` is the context the trunk's calls arrive in ([inbound] trunk_context)."""
    changes: list[FileChange] = []
    for f in files:
        if not f.name.endswith("_livecall.conf"):
            raise InstallError(f"refusing to write {f.name}: LiveCall only writes *_livecall.conf files")
        target = dest / f.name
        old = _read(target) if target.exists() else None
        if old != f.text:
            changes.append(FileChange(target, old, f.text, ours=True))
    edits: dict[str, str] = {}
    for f in files:
        stock = INCLUDED_FROM.get(f.name)
        if stock is None:
            continue
        if stock not in edits:
            path = dest / stock
            if not path.exists():
                raise InstallError(f"{path} does not exist: is {dest} Asterisk's configuration folder? "
                                   f"(LiveCall's {f.name} is included from it)")
            edits[stock] = _read(path)
        edits[stock] = add_include(edits[stock], f.name)
    if contexts:
        if "extensions.conf" not in edits:
            edits["extensions.conf"] = _read(dest / "extensions.conf")
        for context in contexts:
            edits["extensions.conf"] = add_context_includes(edits["extensions.conf"], context)
    if inbound_context:
        if "extensions.conf" not in edits:
            edits["extensions.conf"] = _read(dest / "extensions.conf")
        edits["extensions.conf"] = add_context_includes(edits["extensions.conf"], inbound_context, INBOUND_INCLUDES)
    for stock, text in sorted(edits.items()):
        old = _read(dest / stock)
        if text != old:
            changes.append(FileChange(dest / stock, old, text, ours=False))
    return changes


def warnings(dest: Path) -> list[str]:
    """What install cannot settle by itself in the admin's files, said before anything is written."""
    found = []
    custom = dest / "cdr_custom.conf"
    if custom.exists() and any(_active(line).startswith("[mappings]") for line in _read(custom).splitlines()):
        found.append(f"{custom} already has a [mappings] section and Asterisk reads only the first: "
                     "copy the livecall.csv line of cdr_custom_livecall.conf into yours")
    http = dest / "http.conf"
    if http.exists() and not any(_active(line).replace(" ", "").startswith("bindaddr=") for line in _read(http).splitlines()):
        found.append(f"{http} sets no bindaddr, so Asterisk's HTTP server (and ARI) will not start: "
                     "add `bindaddr = 127.0.0.1` to its [general] section")
    return found


def owner_in(dest: Path) -> Owner:
    """The owner and group of Asterisk's files in ``dest``: those of extensions.conf (Asterisk
    reads it, so they work), else of the folder."""
    for probe in (dest / "extensions.conf", dest / "asterisk.conf", dest):
        if probe.exists():
            st = probe.stat()
            return Owner(st.st_uid, st.st_gid)
    raise InstallError(f"{dest} does not exist")


def apply(changes: list[FileChange], owner: Owner, now: dt.datetime) -> list[str]:
    """Write the planned changes; return what was done, one line each. Refuses before writing
    anything when the files could not be given to Asterisk's owner (only root can do that)."""
    euid = os.geteuid()
    if changes and euid != 0 and owner.uid != euid:
        raise InstallError(f"LiveCall's files must belong to uid {owner.uid} like the files in {changes[0].path.parent}, "
                           f"and only root can give them away: run install as root (or as that user)")
    done = []
    for change in changes:
        if not change.ours and change.path.exists():
            backup = _backup(change.path, now)
            done.append(f"backed up {change.path} to {backup}")
        mode = MODE if change.ours or not change.path.exists() else stat.S_IMODE(change.path.stat().st_mode)
        file_owner = owner if change.ours or not change.path.exists() else _owner_of(change.path)
        _write(change.path, change.new, mode, file_owner)
        done.append(f"{'wrote' if change.ours else 'edited'} {change.path} ({_describe(file_owner, mode)})")
    return done


def _backup(path: Path, now: dt.datetime) -> Path:
    backup = path.with_name(path.name + ".livecall-backup")
    if backup.exists():  # the first backup is the admin's original: keep it
        backup = path.with_name(f"{path.name}.livecall-backup-{now:%Y%m%d%H%M%S}")
    shutil.copy2(path, backup)
    st = path.stat()
    os.chown(backup, st.st_uid, st.st_gid)
    return backup


def _write(path: Path, text: str, mode: int, owner: Owner) -> None:
    tmp = path.with_name(f".{path.name}.livecall-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
            os.fchmod(f.fileno(), mode)
            if (os.geteuid() == 0) or (owner.uid, owner.gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(f.fileno(), owner.uid, owner.gid)
                except PermissionError as exc:
                    raise InstallError(f"cannot give {path} to uid {owner.uid} gid {owner.gid} like the files beside it "
                                       f"(run install as root or as Asterisk's user): {exc}") from None
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _owner_of(path: Path) -> Owner:
    st = path.stat()
    return Owner(st.st_uid, st.st_gid)


def _describe(owner: Owner, mode: int) -> str:
    return f"uid {owner.uid} gid {owner.gid}, mode {mode:04o}"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc.strerror}") from None
