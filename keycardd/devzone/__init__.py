"""A local Keycard zone on loopback: the protocols keycardd consumes, for offline work and the test suite.

`keycardd.devzone.app.create_app(state)` builds the Starlette application; `keycardd.devzone.server` runs it.
The zone's own RS256 keys (`keys.ZoneKeys`) sign both policy attestations and the tokens it issues.
"""
