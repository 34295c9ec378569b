"""Bridge networks: network namespaces, veth pairs, IPAM, NAT, published ports and name resolution.

The layer sits beside ``image`` and ``runtime``: it imports ``linux``,
``database`` and ``errors`` only, and the engine drives it through
``driver.Driver``. Nothing is re-exported here: every ``pallet`` command
imports this package first, and each caller imports only the module it
uses (``netlink`` alone costs ~0.4 ms).

Modules, each owning one thing:

- ``netlink`` — a small rtnetlink client (links, veth pairs made straight
  into a namespace, bridge ports, addresses, routes; errors by errno).
- ``netns`` — named network namespaces (bind-mounted files), entering one.
- ``ipam`` — pure allocation: subnets from docker's default pools around
  the host's routes, gateways, ranges, serial addresses, ``--ip``.
- ``store`` — the layer's tables in ``pallet.db`` (``SCHEMA``): networks,
  endpoints holding addresses, published ports.
- ``ports`` — whether a host port is free, and choosing one.
- ``nft`` — nftables batches in the root's own table: masquerade, published
  ports, isolation, ``--internal``, 127.0.0.1 publishing.
- ``resolver`` — one small DNS server per user-defined network.
- ``driver`` — composes the above: ``create_network``, ``ensure_network``,
  ``attach``, ``detach``, ``suspend``/``resume``, ``remove_network``,
  ``reconcile``, and docker's ``inspect`` documents.
"""
