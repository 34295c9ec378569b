"""Disk use and garbage collection: system df, and the prunes of containers, images and volumes."""
