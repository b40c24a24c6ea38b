"""Veles: real-time risk management for MetaTrader 5 brokerages."""
