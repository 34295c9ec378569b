"""The Docker Engine API over a unix socket, a thin translation onto the engine."""
