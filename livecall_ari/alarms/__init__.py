"""The unscreened-call alarm: calls from agents' phones that reached the trunk without the gate."""
