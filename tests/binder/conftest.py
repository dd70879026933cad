"""The Binder suite: rebuilds binder/ in a fresh virtualenv (slow, needs the package index)."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "binder: rebuilds the Binder environment from binder/ in a fresh virtualenv (slow)"
    )
