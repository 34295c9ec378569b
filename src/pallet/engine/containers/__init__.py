"""Container records and their lifecycle: the rows, names and locks, docker's inspect document, create/start/stop/kill/rm/wait, exec, and reconciling what the shims report."""
