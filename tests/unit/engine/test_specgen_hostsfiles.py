"""The /etc files a container gets: docker's /etc/hosts, the host's resolv.conf filtered, the hostname."""

from __future__ import annotations

from pathlib import Path

from pallet.engine.spec.hostsfiles import hosts_content, resolv_conf_content, write_network_files
from pallet.engine.spec.syntax import parse_network


def test_private_network_hosts_has_localhost_only() -> None:
    text = hosts_content(parse_network("private"), "10.0.0.1 hostonly\n")
    assert text.startswith("127.0.0.1\tlocalhost\n")
    assert "hostonly" not in text


def test_host_network_keeps_the_hosts_files_of_the_host() -> None:
    assert hosts_content(parse_network("host"), "10.0.0.1 hostonly\n") == "10.0.0.1 hostonly\n"
    assert resolv_conf_content(parse_network("host"), "nameserver 127.0.0.53\n") == "nameserver 127.0.0.53\n"


def test_loopback_nameservers_are_dropped_outside_the_host_network() -> None:
    text = resolv_conf_content(
        parse_network("private"), "search lan\nnameserver 127.0.0.53\nnameserver 10.1.1.1\n"
    )
    assert text == "search lan\nnameserver 10.1.1.1\n"
    fallback = resolv_conf_content(parse_network("none"), "nameserver 127.0.0.53\noptions edns0\n")
    assert fallback == "options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_write_network_files_writes_all_three_and_maps_them(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "resolv.conf").write_text("nameserver 192.0.2.1\n")
    out = tmp_path / "container"
    out.mkdir()
    mapping = write_network_files(
        str(out), hostname="box", network=parse_network("private"), host_etc=str(etc)
    )
    assert mapping == {
        "/etc/hostname": str(out / "hostname"),
        "/etc/hosts": str(out / "hosts"),
        "/etc/resolv.conf": str(out / "resolv.conf"),
    }
    assert (out / "hostname").read_text() == "box\n"
    assert (out / "resolv.conf").read_text() == "nameserver 192.0.2.1\n"
    assert "localhost" in (out / "hosts").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["hostname", "hosts", "resolv.conf"]  # no temp files left
    write_network_files(str(out), hostname="box2", network=parse_network("private"), host_etc=str(etc))
    assert (out / "hostname").read_text() == "box2\n"
