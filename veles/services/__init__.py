"""Services used by the web tier and the CLI: auth, bus, engine client, demo data."""
