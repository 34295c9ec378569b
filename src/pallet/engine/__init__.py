"""The high-level runtime: containers from images, shims, logs, exec, volumes, restart policies."""
