"""``pallet network ...``: docker's flag pairing, the ``ls`` rows, filters and formats, and what each
verb prints, against a recording stand-in for the engine's service (no root, no kernel)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from pallet.cli import networks
from pallet.cli.main import main
from pallet.cli.networks import IpamRequest, NetworkFilters, ipam_request, ls_row
from pallet.errors import FailedPrecondition, InvalidArgument, NotFound, Unsupported
from pallet.network.driver import inspect_network
from pallet.network.store import Endpoint, Network


def network(name: str, n: int, **fields: Any) -> Network:
    values: dict[str, Any] = {
        "id": f"{n:x}" * 64,
        "name": name,
        "bridge": f"br-{n}",
        "subnet": f"10.9.{n}.0/24",
        "gateway": f"10.9.{n}.1",
        "ip_range": f"10.9.{n}.0/24",
        "internal": False,
        "dns": name != "bridge",
        "mtu": 1500,
        "created": "2026-12-07T06:40:21Z",
        "labels": {},
        "options": {},
    }
    values.update(fields)
    return Network(**values)


def endpoint(net: Network, container: str, ip: str) -> Endpoint:
    return Endpoint(
        id="e" * 64, network_id=net.id, container_id=container, name="web", aliases=[], ip=ip,
        mac="02:42:0a:09:00:02", ports=[], netns="/run/x", veth="veth" + "e" * 11,
    )  # fmt: skip


class FakeService:
    """Answers the network verbs from a list of networks and records every call."""

    def __init__(self, nets: list[Network], attached: dict[str, list[Endpoint]] | None = None) -> None:
        self.nets = nets
        self.attached = attached or {}
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __enter__(self) -> FakeService:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        pass

    def _find(self, ref: str) -> Network:
        for n in self.nets:
            if ref in (n.name, n.id) or n.id.startswith(ref):
                return n
        raise NotFound(f"network {ref} not found")

    def network_list(self) -> list[Network]:
        return list(self.nets)

    def network_inspect(self, ref: str) -> dict[str, Any]:
        n = self._find(ref)
        return inspect_network(n, self.attached.get(n.id, []))

    def network_create(self, name: str, **kwargs: Any) -> Network:
        self.calls.append(("create", (name,), kwargs))
        return network(name, 7)

    def network_remove(self, ref: str) -> Network:
        n = self._find(ref)
        if self.attached.get(n.id):
            raise FailedPrecondition(f"error while removing network: network {n.name} has active endpoints")
        self.calls.append(("remove", (ref,), {}))
        return n

    def network_prune(self, filters: object = None) -> list[Network]:
        self.calls.append(("prune", (), {"filters": filters}))
        return [n for n in self.nets if n.name != "bridge" and not self.attached.get(n.id)]

    def network_connect(self, net: str, container: str, **kwargs: Any) -> None:
        self.calls.append(("connect", (net, container), kwargs))

    def network_disconnect(self, net: str, container: str, **kwargs: Any) -> None:
        self.calls.append(("disconnect", (net, container), kwargs))


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> FakeService:
    bridge, app, app10, app2 = (
        network("bridge", 1),
        network("app", 2),
        network("app10", 3),
        network("app2", 4),
    )
    app2 = network("app2", 4, labels={"tier": "db"}, internal=True)
    fake = FakeService([bridge, app, app10, app2], {app.id: [endpoint(app, "c" * 64, "10.9.2.2")]})

    import pallet.engine.service

    monkeypatch.setattr(pallet.engine.service.Service, "open", lambda *args, **kwargs: fake)
    return fake


def run(*argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["--root", "/nonexistent", *argv],
        out=out,
        err=err,
        stdin=io.BytesIO(stdin),
        stdout_binary=io.BytesIO(),
    )
    return code, out.getvalue(), err.getvalue()


# --- create: docker's pairing of --subnet, --gateway and --ip-range --------------------------------


def test_one_subnet_with_its_gateway_and_range() -> None:
    assert ipam_request(["10.5.0.0/16"], ["10.5.0.254"], ["10.5.1.0/24"]) == IpamRequest(
        subnet="10.5.0.0/16", gateway="10.5.0.254", ip_range="10.5.1.0/24"
    )


def test_dual_stack_pairs_each_gateway_with_the_subnet_holding_it() -> None:
    got = ipam_request(["fd00:1::/64", "10.5.0.0/24"], ["10.5.0.9", "fd00:1::9"], [])
    assert got == IpamRequest(
        subnet="10.5.0.0/24", gateway="10.5.0.9", subnet6="fd00:1::/64", gateway6="fd00:1::9"
    )


@pytest.mark.parametrize(
    ("subnets", "gateways", "ranges", "error", "words"),
    [
        (["nonsense"], [], [], InvalidArgument, "invalid CIDR address: nonsense"),
        ([], ["10.0.0.1"], [], InvalidArgument, "every ip-range or gateway must have a corresponding subnet"),
        (["10.5.0.0/24"], ["10.6.0.1"], [], InvalidArgument, "no matching subnet for gateway 10.6.0.1"),
        (["10.5.0.0/24"], [], ["10.6.0.0/25"], InvalidArgument, "no matching subnet for range 10.6.0.0/25"),
        (["10.5.0.0/24"], ["bogus"], [], InvalidArgument, "invalid gateway address: bogus"),
        (["10.5.0.0/16", "10.5.3.0/24"], [], [], InvalidArgument, "overlapping subnet"),
        (["10.5.0.0/24", "10.6.0.0/24"], [], [], Unsupported, "one IPv4 subnet"),
        (
            ["10.5.0.0/24", "10.6.0.0/24"],
            ["10.5.0.1", "10.5.0.2"],
            [],
            Unsupported,
            "one IPv4 subnet",
        ),
    ],
)
def test_bad_addressing_is_one_clear_error(
    subnets: list[str], gateways: list[str], ranges: list[str], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        ipam_request(subnets, gateways, ranges)


def test_two_gateways_for_one_subnet_are_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"cannot configure multiple gateways \(10.5.0.1, 10.5.0.2\)"):
        ipam_request(["10.5.0.0/24", "fd00:5::/64"], ["10.5.0.1", "10.5.0.2"], [])


def test_create_passes_docker_flags_to_the_engine_and_prints_the_id(service: FakeService) -> None:
    code, out, err = run(
        "network", "create", "--subnet", "10.5.0.0/24", "--gateway", "10.5.0.9", "--ip-range", "10.5.0.128/25",
        "--internal", "--label", "a=b", "--label", "flag", "-o", "com.docker.network.bridge.name=pt0", "web",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out == "7" * 64 + "\n"
    assert service.calls == [
        (
            "create",
            ("web",),
            {
                "driver": "bridge", "subnet": "10.5.0.0/24", "gateway": "10.5.0.9", "ip_range": "10.5.0.128/25",
                "internal": True, "labels": {"a": "b", "flag": ""},
                "options": {"com.docker.network.bridge.name": "pt0"}, "ipv6": False, "subnet6": "", "gateway6": "",
                "ipam_options": {},
            },
        )
    ]  # fmt: skip


def test_create_takes_an_ipv6_range_aux_addresses_and_ipam_options(service: FakeService) -> None:
    code, _, err = run(
        "network", "create", "--ipv6", "--subnet", "2001:db8::/64", "--ip-range", "2001:db8::/96",
        "--aux-address", "a=2001:db8::5", "--ipam-opt", "k=v", "v6",
    )  # fmt: skip
    assert (code, err) == (0, "")
    (call,) = service.calls
    assert (call[2]["subnet6"], call[2]["ip_range6"]) == ("2001:db8::/64", "2001:db8::/96")
    assert (call[2]["aux_addresses"], call[2]["ipam_options"]) == ({"a": "2001:db8::5"}, {"k": "v"})


def test_an_ipv6_subnet_without_ipv6_says_to_add_the_flag(service: FakeService) -> None:
    code, out, err = run("network", "create", "--subnet", "fd00:9::/64", "v6")
    assert (code, out) == (1, "")
    assert err == "pallet: --subnet fd00:9::/64 is an IPv6 subnet: add --ipv6 to enable IPv6\n"
    assert service.calls == []


# --- ls ---------------------------------------------------------------------------------------------


def test_ls_prints_docker_table_in_natural_name_order(service: FakeService) -> None:
    code, out, _ = run("network", "ls")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [line.split()[1] for line in lines[1:]] == ["app", "app2", "app10", "bridge"]
    assert lines[1].split() == ["2" * 12, "app", "bridge", "local"]


def test_ls_quiet_and_no_trunc(service: FakeService) -> None:
    assert run("network", "ls", "-q", "--filter", "name=^app$")[1] == "2" * 12 + "\n"
    assert run("network", "ls", "-q", "--no-trunc", "--filter", "name=^app$")[1] == "2" * 64 + "\n"


def test_ls_json_has_docker_fields_as_text(service: FakeService) -> None:
    out = run("network", "ls", "--format", "json", "--filter", "name=app2")[1]
    assert json.loads(out) == {
        "CreatedAt": "2026-12-07 06:40:21 +0000 UTC",
        "Driver": "bridge",
        "ID": "4" * 12,
        "IPv6": "false",
        "Internal": "true",
        "Labels": "tier=db",
        "Name": "app2",
        "Scope": "local",
    }


def test_ls_go_template(service: FakeService) -> None:
    out = run("network", "ls", "--format", "{{.Name}}:{{.Internal}}", "-f", "type=custom")[1]
    assert out == "app:false\napp2:true\napp10:false\n"
    table = run("network", "ls", "--format", "table {{.Name}}\t{{.Labels}}", "-f", "label=tier")[1]
    assert table.splitlines() == ["NAME      LABELS", "app2      tier=db"]


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        (["name=app"], ["app", "app2", "app10"]),
        (["name=app2", "name=bridge"], ["app2", "bridge"]),
        (["id=" + "3" * 5], ["app10"]),
        (["driver=bridge", "scope=local"], ["app", "app2", "app10", "bridge"]),
        (["driver=overlay"], []),
        (["type=builtin"], ["bridge"]),
        (["dangling=true"], ["app2", "app10"]),
        (["dangling=false"], ["app", "bridge"]),
        (["label=tier=db"], ["app2"]),
        (["label=tier=web"], []),
        (["label=tier", "name=app"], ["app2"]),
    ],
)
def test_ls_filters(service: FakeService, filters: list[str], names: list[str]) -> None:
    argv = [a for f in filters for a in ("--filter", f)]
    assert run("network", "ls", "--format", "{{.Name}}", *argv)[1].split() == names


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("color=red", "invalid filter 'color'"),
        ("type=odd", "invalid filter: 'type'='odd'"),
        ("dangling=maybe", "invalid filter 'dangling=maybe'"),
        ("name", 'bad format of filter "name"'),
    ],
)
def test_ls_bad_filter_is_a_usage_error(service: FakeService, value: str, words: str) -> None:
    code, out, err = run("network", "ls", "--filter", value)
    assert (code, out) == (125, "")
    assert words in err
    assert err.count("\n") == 1


def test_filters_alone() -> None:
    doc = {"Name": "x", "Id": "ab" * 32, "Driver": "bridge", "Labels": {"k": "v"}, "Containers": {}}
    assert NetworkFilters(["label=k=v", "dangling=1"]).matches(doc)
    assert not NetworkFilters(["label=k=w"]).matches(doc)
    assert NetworkFilters(["name=["]).matches({**doc, "Name": "a[b"})  # not a regular expression: as text


def test_ls_row_of_a_document_with_nanoseconds() -> None:
    row = ls_row(
        {"Name": "n", "Id": "f" * 64, "Created": "2026-12-07T06:40:21.120000000Z", "EnableIPv6": True}
    )
    assert row["CreatedAt"] == "2026-12-07 06:40:21.12 +0000 UTC"
    assert row["IPv6"] == "true"


# --- inspect, rm, prune, connect, disconnect ---------------------------------------------------------


def test_inspect_prints_docker_document_and_formats(service: FakeService) -> None:
    code, out, _ = run("network", "inspect", "app")
    assert code == 0
    (doc,) = json.loads(out)
    assert list(doc) == [
        "Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal", "Attachable", "Ingress",
        "ConfigFrom", "ConfigOnly", "Containers", "Options", "Labels",
    ]  # fmt: skip
    assert doc["Containers"]["c" * 64]["IPv4Address"] == "10.9.2.2/24"
    assert (
        run("network", "inspect", "-f", "{{.Name}} {{.Internal}}", "app", "app2")[1]
        == "app false\napp2 true\n"
    )
    code, out, err = run("network", "inspect", "nope")
    assert (code, out, err) == (1, "", "pallet: network nope not found\n")


def test_rm_prints_each_name_and_refuses_one_in_use(service: FakeService) -> None:
    code, out, err = run("network", "rm", "app2", "app", "ghost")
    assert code == 1
    assert out == "app2\n"
    assert err == (
        "pallet: error while removing network: network app has active endpoints\n"
        "pallet: network ghost not found\n"
    )
    assert run("network", "rm", "-f", "ghost") == (0, "", "")


def test_prune_asks_first_then_lists_what_went(service: FakeService) -> None:
    code, out, _ = run("network", "prune", stdin=b"n\n")
    assert code == 0
    assert "Are you sure you want to continue? [y/N]" in out
    assert service.calls == []
    code, out, _ = run("network", "prune", "-f", "--filter", "label=tier")
    assert code == 0
    assert out == "Deleted Networks:\napp10\napp2\n\n"
    (call,) = service.calls
    assert call[2]["filters"].labels == ["tier"]


def test_connect_and_disconnect_pass_their_flags(service: FakeService) -> None:
    assert run(
        "network", "connect", "--alias", "db", "--alias", "store", "--ip", "10.9.2.9", "app", "web"
    ) == (
        0,
        "",
        "",
    )
    assert run("network", "disconnect", "-f", "app", "web") == (0, "", "")
    assert service.calls == [
        ("connect", ("app", "web"), {"aliases": ["db", "store"], "ip": "10.9.2.9"}),
        ("disconnect", ("app", "web"), {"force": True}),
    ]


def test_connect_passes_dockers_endpoint_flags(service: FakeService) -> None:
    code, _, err = run(
        "network", "connect", "--ip6", "2001:db8::9", "--link", "db:data", "--link-local-ip", "169.254.8.8",
        "--driver-opt", "k=v", "app", "web",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert service.calls == [
        (
            "connect", ("app", "web"),
            {"aliases": [], "ip": "", "ip6": "2001:db8::9", "links": ["db:data"], "link_local_ips": ["169.254.8.8"],
             "driver_opts": {"k": "v"}},
        )
    ]  # fmt: skip


def test_every_verb_is_in_the_group() -> None:
    from pallet.cli.commands import GROUPS, lookup

    verbs = GROUPS["network"][1]
    assert sorted(verbs) == ["connect", "create", "disconnect", "inspect", "ls", "prune", "rm"]
    for verb in verbs.values():
        assert hasattr(networks, verb.function)
    assert lookup("network", "list") is verbs["ls"]


def test_inspect_of_any_object_finds_networks(service: FakeService) -> None:
    code, out, _ = run(
        "inspect",
        "--type",
        "network",
        "-f",
        "{{.Name}} {{.Driver}}",
        "app",
    )
    assert (code, out) == (0, "app bridge\n")
    assert run("inspect", "--type", "network", "ghost")[2] == "Error: No such network: ghost\n"
