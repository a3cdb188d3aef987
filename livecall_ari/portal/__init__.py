"""The web portal (issue 8): calls, recordings, live supervision, lists, charges, coaching and
data protection in any browser, served by ``livecall serve`` beside the API (docs/portal.md)."""
