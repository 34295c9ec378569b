"""The one seam to the kernel beyond `os`: syscalls over ctypes (namespaces, mounts, pivot_root, capabilities, prctl) and the constants they take."""
