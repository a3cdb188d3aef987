"""The Asterisk Manager Interface, for the one thing neither ARI nor the dialplan can do."""
