"""Tests of the stores on their own (a package, so its conftest does not shadow ``tests/conftest.py``)."""
