"""Watching containers: resource stats, processes (top), published ports, and docker's inspect document."""
