"""Benchmarks: measured on demand (`veles bench ...`), never asserted in tests."""
