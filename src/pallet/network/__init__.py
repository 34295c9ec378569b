"""Bridge networks: network namespaces, veth pairs, IPAM, NAT, published ports and name resolution."""
