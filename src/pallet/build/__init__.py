"""The Dockerfile parser and builder."""
