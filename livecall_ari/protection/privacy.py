"""The privacy notice for the organisation's website, generated from its settings."""

from __future__ import annotations

from livecall_ari import config
from livecall_ari.protection.core import BASIS_TITLES, LawfulBasisPolicy, RetentionPolicy

RIGHTS = (
    "to be told how we use your information (this notice)",
    "to a copy of the information we hold about you (subject access)",
    "to have it corrected if it is wrong",
    "to have it erased, where we have no overriding reason to keep it",
    "to object to our use of it, and to object at any time to marketing calls",
    "to withdraw your consent, where we rely on consent",
    "to restrict our use of it while a question about it is settled",
    "to data portability, where we rely on consent or a contract",
)


def privacy_notice(settings: config.Settings, bases: LawfulBasisPolicy, retention: RetentionPolicy) -> str:
    """Plain text (Markdown-friendly): purposes, lawful bases, retention, rights, contact."""
    org = settings.organisation.name
    p = settings.protection
    contact = ", ".join(x for x in (p.dpo_name, p.dpo_email, p.dpo_phone, p.dpo_address) if x) or f"{org}, at the address on this website"
    basis_lines = [f"- {purpose} calls: {BASIS_TITLES[basis]}" for purpose, basis in sorted(bases.by_purpose.items())]
    basis_lines.append(f"- anything else: {BASIS_TITLES[bases.default]}")
    keep = [f"- {rule.kind} ({'all' if rule.purpose == '*' else rule.purpose}"
            f"{'' if rule.basis == '*' else ', ' + rule.basis.replace('_', ' ')}): {rule.days} days" for rule in retention.rules]
    rights = "\n".join(f"- {r}" for r in RIGHTS)
    registration = f" Our ICO registration number is {p.ico_registration}." if p.ico_registration else ""
    return f"""# How {org} uses call recordings and call records

We record calls from time to time for {p.recording_purposes}. When we call you, or you call us,
you may hear a message telling you the call is recorded. We also keep a record of each call we
make (the number, when, why, and the checks we made against the Telephone Preference Service
and our own list of people who asked us not to call), and of each call you make to us (your
number, the number you called, when, and who answered).

## Why we are allowed to

{chr(10).join(basis_lines)}

## How long we keep it

{chr(10).join(keep)}

Records under a legal hold (a claim, an investigation) are kept until it ends. If you ask us to
erase your information we keep only what the law requires, and a one-way code of your number so
that we never call you for marketing again.

## Your rights

{rights}

We answer requests within one month. If you are unhappy with how we handle your information you
can complain to the Information Commissioner's Office (ico.org.uk, 0303 123 1113).

## Contact

{contact}.{registration}
"""
