"""Ray actors: thin hosts around the pure risk core that hold the live state of each tenant."""
