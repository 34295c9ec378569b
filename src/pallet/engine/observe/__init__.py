"""Watching containers: resource stats, processes (top) and published ports."""
