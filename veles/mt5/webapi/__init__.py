"""A connector to real MT5 servers through MetaQuotes' MT5 Web API (HTTPS REST, manager account).

`auth` holds the documented authentication math, `retcodes` the server's answer codes, `numbers`
exact parsing of the string numbers every answer carries, `client` the async session, and
`fake_server` a protocol-faithful stand-in fed by the simulated broker, for tests.
"""
