"""pallet: a container engine in Python, layered like the Docker stack.

Kept empty on purpose: every console script imports this package first, and
``pallet-runtime`` must start in a few milliseconds (see ``../DESIGN.md``).
"""
