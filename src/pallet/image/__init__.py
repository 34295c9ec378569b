"""The content-addressable store, image metadata, layers (tar, whiteouts, compression), snapshots and image archives."""
