"""A public test kit: fakes, fixtures and conformance checks. Only tests import it."""
