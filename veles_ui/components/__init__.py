"""Reusable pieces of the portal's screens."""
