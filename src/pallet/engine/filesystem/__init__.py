"""A container's filesystem seen from outside: copy in and out (cp), export, the changes against its image (diff), and commit."""
