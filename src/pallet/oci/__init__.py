"""The OCI and Docker specs as typed data: runtime config and state, image manifests, descriptors, digests and references. Pure: no side effects beyond reading and writing JSON."""
