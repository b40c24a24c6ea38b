"""Pure risk core: MetaTrader 5 instruments, conversion, margin, profit, account state and book.

No I/O lives here: no Ray, no database, no network. Everything can be tested and benchmarked alone.
"""
