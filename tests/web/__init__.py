"""Tests of anyjob.web (a package, so its conftest does not shadow ``tests/conftest.py``)."""
