"""``recorded_ports``: a container's published ports from its container.json, for ``network connect``."""

from __future__ import annotations

from pallet.engine.containers.attachments import recorded_ports
from pallet.network.store import PortMapping


def test_port_bindings_are_allocated_again_as_asked() -> None:
    document = {
        "Config": {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}},
        "HostConfig": {
            "PortBindings": {
                "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}],
                "53/udp": [{"HostPort": "1053"}],
            }
        },
    }
    assert recorded_ports(document, set()) == [
        PortMapping(protocol="tcp", host_ip="127.0.0.1", host_port=18080, container_port=80),
        PortMapping(protocol="udp", host_ip="", host_port=1053, container_port=53),
    ]


def test_a_container_that_published_nothing_gets_no_ports() -> None:
    assert (
        recorded_ports(
            {"Config": {"ExposedPorts": {"80/tcp": {}}}, "HostConfig": {"PortBindings": {}}}, set()
        )
        == []
    )
    assert recorded_ports({}, set()) == []
