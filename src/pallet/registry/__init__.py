"""The distribution protocol: a registry client (pull, push, auth) and a registry server."""
