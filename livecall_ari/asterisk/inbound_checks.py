"""``livecall doctor`` on inbound calls: [livecall-inbound] is loaded and the destination it
sends callers to exists. A Goto to a context or extension that is not there hangs the caller
up after the notice, so a typo in ``[inbound] destination_context`` would lose every inbound
call without a word in LiveCall's own logs.
"""

from __future__ import annotations

from livecall_ari.asterisk.checks import Check
from livecall_ari.config import InboundSettings, Settings

NAME = "inbound calls"


def judge_inbound(inbound: InboundSettings, context_shown: str | None, destination_shown: str | None) -> Check | None:
    """The check from what ``dialplan show livecall-inbound`` and ``dialplan show <destination>``
    printed (None: not asked, or Asterisk could not be asked). None when inbound calls are off."""
    if not inbound.destination_context:
        if inbound.trunk_context:
            return Check(NAME, False, f"[inbound] trunk_context is {inbound.trunk_context!r} but destination_context is "
                         "empty, so no [livecall-inbound] is generated: say where inbound calls go after the notice")
        return None
    if context_shown is None or destination_shown is None:
        return Check(NAME, False, "could not ask Asterisk about [livecall-inbound]; set [asterisk] rx_command", warning=True)
    if "no existence" in context_shown:
        return Check(NAME, False, "[livecall-inbound] is not loaded: run `livecall asterisk install` (or render) and "
                     "`dialplan reload`")
    target = destination(inbound)
    if "no existence" in destination_shown:
        return Check(NAME, False, f"inbound calls go to {target} ([inbound] destination_context, destination_extension), "
                     "which is not in the dialplan: every inbound call would be hung up after the notice")
    return Check(NAME, True, f"[livecall-inbound] is loaded and sends callers on to {target}")


def destination(inbound: InboundSettings) -> str:
    """What ``dialplan show`` is asked about: the extension in its context, or the context (the
    DID the call arrived on is the extension then)."""
    if inbound.destination_extension:
        return f"{inbound.destination_extension}@{inbound.destination_context}"
    return inbound.destination_context


async def inbound_checks(settings: Settings) -> list[Check]:
    from livecall_ari.asterisk.pbx_checks import rx

    inbound = settings.inbound
    context_shown = destination_shown = None
    if inbound.destination_context:
        context = await rx(settings, "dialplan show livecall-inbound", timeout=30)
        dest = await rx(settings, f"dialplan show {destination(inbound)}", timeout=30)
        context_shown = context.text if context.ok else None
        destination_shown = dest.text if dest.ok else None
    check = judge_inbound(inbound, context_shown, destination_shown)
    return [] if check is None else [check]
