"""Container records and their lifecycle: the rows, names and locks, create/start/stop/kill/rm/wait, exec, and reconciling what the shims report."""
