"""The privacy notice for the organisation's website, generated from its settings (UK GDPR
art. 13), and the doctor's check that the organisation says who it is and how to reach it
(PECR reg 24): a placeholder name is never printed or announced."""

from __future__ import annotations

from livecall_ari import config
from livecall_ari.asterisk.checks import Check
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
    o = settings.organisation
    org = o.name.strip() if o.named() else "we"
    p = settings.protection
    reach = [x.strip().replace("\n", ", ") for x in (o.contact_number, o.contact_address) if x.strip()]
    dpo = ", ".join(x for x in (p.dpo_name, p.dpo_email, p.dpo_phone, p.dpo_address) if x)
    contact = "\n\n".join(x for x in (
        f"{org if o.named() else 'Us'}: {', '.join(reach)}." if reach else "",
        f"Our data protection contact: {dpo}." if dpo else "",
    ) if x) or "At the address on this website."
    basis_lines = [f"- {purpose} calls: {BASIS_TITLES[basis]}" for purpose, basis in sorted(bases.by_purpose.items())]
    basis_lines.append(f"- anything else: {BASIS_TITLES[bases.default]}")
    recording_basis = BASIS_TITLES.get(p.recording_lawful_basis, p.recording_lawful_basis)
    consent = " (or your consent, where you pressed 1 to allow the recording)" if settings.recording.notice_mode == "opt_in" else ""
    basis_lines.append(f"- recordings of calls, whatever the call's purpose: {recording_basis}{consent}")
    keep = [f"- {rule.kind} ({'all' if rule.purpose == '*' else rule.purpose}"
            f"{'' if rule.basis == '*' else ', ' + rule.basis.replace('_', ' ')}): {rule.days} days" for rule in retention.rules]
    rights = "\n".join(f"- {r}" for r in RIGHTS)
    registration = f" Our ICO registration number is {p.ico_registration}." if p.ico_registration else ""
    title = f"How {org} uses" if o.named() else "How we use"
    return f"""# {title} call recordings and call records

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

{contact}{registration}
"""


def organisation_check(settings: config.Settings) -> Check:
    """PECR reg 24: a called party must be told who is calling and be able to reach them. A
    warning while the name is the placeholder (prompts then leave it out) or the contact
    number and address are empty."""
    o = settings.organisation
    missing = [what for what, value in (("contact_number", o.contact_number), ("contact_address", o.contact_address))
               if not value.strip()]
    if not o.named():
        return Check("organisation", False, f"[organisation] name is {o.name!r}, a placeholder: the notice leaves the name "
                     "out until it is set (`livecall init --organisation-name`), and PECR reg 24 wants it given", warning=True)
    if missing:
        return Check("organisation", False, f"[organisation] {' and '.join(missing)} empty: PECR reg 24 wants called parties "
                     "to be able to reach you (`livecall init --contact-number --contact-address`)", warning=True)
    return Check("organisation", True, f"{o.name}: {o.contact_number}; {o.contact_address.splitlines()[0]}")
