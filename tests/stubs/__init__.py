"""Local stand-ins for the outside services Veles talks to (Twilio, SMTP), for every test to use.

The fixtures in `tests.stubs.fixtures` are registered for the whole suite by `tests/conftest.py`.
"""
