"""LiveCall's HTTP side: the API and (later) the portal, served by ``livecall serve``."""
