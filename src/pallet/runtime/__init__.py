"""The low-level OCI runtime (the runc layer): a bundle in, an isolated process out. Its CLI is `pallet-runtime`."""
