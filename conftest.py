"""Root conftest: the real-component fixtures live in devstack.pytest_plugin."""

pytest_plugins = ["devstack.pytest_plugin"]
