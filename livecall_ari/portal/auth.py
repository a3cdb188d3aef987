"""Accounts and sessions: argon2id password hashes, server-side sessions behind a random
cookie token, a CSRF token per session, and login throttling per account (from one address, and from all).

The cookie carries 32 random bytes; the database keeps only their SHA-256, the user, the
session's CSRF token and its expiry. Logging out, disabling a user or resetting a password
deletes the sessions, so they end at once everywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from livecall_ari.portal.core import FAILURE_WINDOW, Viewer, check_role, login_delay
from livecall_ari.portal.models import LoginFailure, PortalSession, PortalUser

UTC = dt.timezone.utc
SESSION_LIFETIME = dt.timedelta(hours=12)
IDLE_TIMEOUT = dt.timedelta(hours=2)
MIN_PASSWORD = 10


class AccountError(Exception):
    """A user that cannot be added or changed; the message says why."""


@dataclass(frozen=True)
class LoginResult:
    viewer: Viewer | None
    token: str = ""
    retry_after: int = 0  # seconds, when throttled
    message: str = ""


# Failed logins of one account, from any address, before it backs off for everyone.
ACCOUNT_MAX_FAILURES = 20


def _utc(at: dt.datetime) -> dt.datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


def _aware(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def viewer_of(user: PortalUser) -> Viewer:
    return Viewer(str(user.username), str(user.role), str(user.extension or ""))


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


class Accounts:
    """Users and sessions in the portal's tables (the database must be open), for one
    organisation: services of several may share a database, and a user of one never logs into
    another's portal."""

    def __init__(self, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC),
                 hasher: PasswordHasher | None = None, organisation: str = "default") -> None:
        self.clock = clock
        self.organisation = organisation
        self.hasher = hasher or PasswordHasher()
        # Verified against when the user name is unknown, so both cases take as long.
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))

    # -- users ----------------------------------------------------------------------------

    def add(self, username: str, role: str, password: str, extension: str = "") -> PortalUser:
        name = username.strip()
        if not name or any(c.isspace() for c in name):
            raise AccountError("a user name must be one word")
        try:
            check_role(role)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
        if role == "agent" and not extension:
            raise AccountError("an agent needs --extension (their phone): it decides which calls they see")
        if PortalUser.get_or_none(PortalUser.username == name) is not None:
            raise AccountError(f"user {name!r} exists (use `livecall users reset`)")
        now = _utc(self.clock())
        user: PortalUser = PortalUser.create(
            username=name, role=role, extension=extension, password_hash=self.hasher.hash(check_password(password)),
            created_at=now, password_changed_at=now, organisation=self.organisation,
        )
        return user

    def ours(self, user: PortalUser | None) -> bool:
        """The user belongs to this organisation (or predates organisations: see :meth:`login`)."""
        return user is not None and str(user.organisation) in (self.organisation, "")

    def get(self, username: str) -> PortalUser:
        user = PortalUser.get_or_none(PortalUser.username == username)
        if user is None or not self.ours(user):
            raise AccountError(f"no user {username!r}")
        return user

    def reset(self, username: str, password: str) -> PortalUser:
        """New password, account enabled again, every session ended."""
        user = self.get(username)
        PortalUser.update(password_hash=self.hasher.hash(check_password(password)), disabled=False,
                          password_changed_at=_utc(self.clock())).where(PortalUser.id == user.id).execute()
        PortalSession.delete().where(PortalSession.user == user.id).execute()
        LoginFailure.delete().where(LoginFailure.username == user.username).execute()
        return self.get(username)

    def disable(self, username: str) -> PortalUser:
        user = self.get(username)
        PortalUser.update(disabled=True).where(PortalUser.id == user.id).execute()
        PortalSession.delete().where(PortalSession.user == user.id).execute()
        return self.get(username)

    def users(self) -> list[PortalUser]:
        return list(PortalUser.select().where(PortalUser.organisation.in_([self.organisation, ""])).order_by(PortalUser.username))

    # -- logging in -------------------------------------------------------------------------

    def login(self, username: str, password: str, address: str) -> LoginResult:
        """Check the password unless throttled; open a session when it is right."""
        now = self.clock()
        since = _utc(now - FAILURE_WINDOW)
        failures = [(_aware(f.at), str(f.address)) for f in LoginFailure.select(LoginFailure.at, LoginFailure.address).where(
            (LoginFailure.username == username) & (LoginFailure.at > since))]
        # Per account from this address (a guesser here backs off soon), and per account from
        # anywhere (a guesser spread over many addresses, later): never by address alone, so
        # failures against one account never lock out the others behind the same proxy.
        wait = max(login_delay([at for at, where in failures if where == address], now),
                   login_delay([at for at, _ in failures], now, ACCOUNT_MAX_FAILURES))
        if wait:
            return LoginResult(None, retry_after=wait, message=f"Too many failed logins: try again in {wait} s.")
        user = PortalUser.get_or_none(PortalUser.username == username)
        if not self.ours(user):
            user = None  # another organisation's user: as if unknown (the dummy hash keeps the time)
        ok = False
        try:
            ok = self.hasher.verify(str(user.password_hash) if user else self._dummy, password) and user is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok or user is None or user.disabled:
            LoginFailure.create(username=username, address=address, at=_utc(now))
            return LoginResult(None, message="Wrong user name or password (or the account is disabled).")
        if not user.organisation:  # made before organisations: it is this one's from now on
            PortalUser.update(organisation=self.organisation).where(PortalUser.id == user.id).execute()
        if self.hasher.check_needs_rehash(str(user.password_hash)):
            PortalUser.update(password_hash=self.hasher.hash(password)).where(PortalUser.id == user.id).execute()
        LoginFailure.delete().where(LoginFailure.username == username).execute()
        token = secrets.token_urlsafe(32)
        PortalSession.create(token_hash=token_hash(token), user=user.id, csrf=secrets.token_urlsafe(24),
                             created_at=_utc(now), last_seen=_utc(now), expires_at=_utc(now + SESSION_LIFETIME),
                             address=address)
        return LoginResult(viewer_of(user), token=token)

    def session(self, token: str | None) -> tuple[Viewer, str] | None:
        """The viewer and CSRF token of a live session, or None (expired, idle, disabled)."""
        if not token:
            return None
        row = PortalSession.get_or_none(PortalSession.token_hash == token_hash(token))
        if row is None:
            return None
        now = self.clock()
        if _aware(row.expires_at) <= now or _aware(row.last_seen) + IDLE_TIMEOUT <= now:
            row.delete_instance()
            return None
        user = PortalUser.get_or_none(PortalUser.id == row.user.id)
        if user is None or user.disabled or not self.ours(user):
            return None
        if now - _aware(row.last_seen) > dt.timedelta(minutes=1):
            PortalSession.update(last_seen=_utc(now)).where(PortalSession.token_hash == row.token_hash).execute()
        return viewer_of(user), str(row.csrf)

    def logout(self, token: str | None) -> None:
        if token:
            PortalSession.delete().where(PortalSession.token_hash == token_hash(token)).execute()


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected.encode(), given.encode())
