"""The spec a container runs with: run options as docker takes them, the defaults and security profile, mounts and network files, and the OCI config built from them."""
