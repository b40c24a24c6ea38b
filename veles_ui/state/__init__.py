"""Reflex states: per-tab server-side state, kept small (only what is on screen)."""
