"""LiveCall: compliance-first call recording and outbound-call screening for Asterisk."""

__version__ = "0.1.0"
