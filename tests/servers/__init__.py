"""Real servers on loopback, started by session fixtures (one module per service).

A module here that sets SITES = ["name", ...] also provides a fixture `site_<name>`
returning a tests.conftest.Site; the behavioural suite then runs on it too.
"""
