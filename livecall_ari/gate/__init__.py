"""The outbound call gate: every call from an agent's phone is decided here before it connects."""
