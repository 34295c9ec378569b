"""docker's option syntaxes (``engine.spec.syntax``), against docker's behaviour; messages name
the syntax, never a flag (the CLI adds docker's flag words)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pallet.engine.spec.syntax import (
    DeviceMapping,
    MountSpec,
    NetworkMode,
    RestartPolicy,
    Ulimit,
    collect_env,
    parse_bytes,
    parse_capability,
    parse_cpus,
    parse_device,
    parse_env,
    parse_env_file,
    parse_label,
    parse_log_opt,
    parse_mount,
    parse_network,
    parse_restart,
    parse_security_opt,
    parse_signal,
    parse_sysctl,
    parse_tmpfs,
    parse_ulimit,
    parse_volume,
)
from pallet.errors import InvalidArgument


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1024", 1024),
        ("512m", 512 << 20),
        ("512M", 512 << 20),
        ("1g", 1 << 30),
        ("1.5g", 3 << 29),
        ("64MiB", 64 << 20),
        ("64mb", 64 << 20),
        ("10k", 10240),
        ("7b", 7),
    ],
)
def test_parse_bytes_reads_docker_binary_units(text: str, value: int) -> None:
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "m", "12x", "-1m", "1.m", "one"])
def test_parse_bytes_rejects_non_sizes_naming_the_syntax_not_a_flag(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r'^invalid size: "') as caught:
        parse_bytes(text)
    assert "flag" not in caught.value.message


@given(st.integers(min_value=0, max_value=2**40), st.sampled_from(["", "k", "m", "g"]))
def test_parse_bytes_scales_whole_numbers_exactly(number: int, unit: str) -> None:
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]
    assert parse_bytes(f"{number}{unit}") == number * scale


@pytest.mark.parametrize(
    ("text", "nano"), [("1.5", 1_500_000_000), ("2", 2 * 10**9), (".01", 10**7), ("0.000000001", 1)]
)
def test_parse_cpus_gives_nano_cpus(text: str, nano: int) -> None:
    assert parse_cpus(text) == nano


@pytest.mark.parametrize("text", ["abc", "1.2.3", "0.0000000001", "-1"])
def test_parse_cpus_rejects_what_docker_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"rational number|too precise"):
        parse_cpus(text)


def test_parse_ulimit_reads_soft_and_hard_and_unlimited() -> None:
    assert parse_ulimit("nofile=1024:2048") == Ulimit(name="nofile", soft=1024, hard=2048)
    assert parse_ulimit("nproc=512") == Ulimit(name="nproc", soft=512, hard=512)
    assert parse_ulimit("core=-1") == Ulimit(name="core", soft=2**64 - 1, hard=2**64 - 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nofile", "invalid ulimit argument"),
        ("files=1", "invalid ulimit type: files"),
        ("nofile=2048:1024", "soft limit must be less than or equal to hard limit: 2048 > 1024"),
        ("nofile=x", "must be an integer"),
        ("nofile=1:", "invalid ulimit argument"),
    ],
)
def test_parse_ulimit_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_ulimit(text)


def test_parse_device_forms() -> None:
    assert parse_device("/dev/fuse") == DeviceMapping(path_on_host="/dev/fuse", path_in_container="/dev/fuse")
    assert parse_device("/dev/a:/dev/b") == DeviceMapping(path_on_host="/dev/a", path_in_container="/dev/b")
    assert parse_device("/dev/a:r") == DeviceMapping(
        path_on_host="/dev/a", path_in_container="/dev/a", permissions="r"
    )
    assert parse_device("/dev/a:/dev/b:rw") == DeviceMapping(
        path_on_host="/dev/a", path_in_container="/dev/b", permissions="rw"
    )


@pytest.mark.parametrize(
    ("text", "message"), [("/dev/a:/dev/b:rx", "invalid device mode"), ("dev/a", "bad format")]
)
def test_parse_device_rejects_bad_modes_and_relative_paths(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_device(text)


def test_parse_volume_named_bind_and_anonymous() -> None:
    assert parse_volume("data:/var/lib/data") == MountSpec(
        type="volume", source="data", target="/var/lib/data"
    )
    assert parse_volume("/srv/x/:/x:ro,rshared") == MountSpec(
        type="bind", source="/srv/x", target="/x", read_only=True, propagation="rshared", create_source=True
    )
    assert parse_volume("/cache") == MountSpec(type="volume", target="/cache")
    assert parse_volume("vol:/v:Z,nocopy").relabel == "Z"
    assert parse_volume("vol:/v:nocopy").volume_nocopy


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a:/x", 'volume name "a" is too short'),
        ("my vol:/x", "includes invalid characters"),
        ("./rel:/x", "includes invalid characters.*use absolute path"),
        ("/host:relative", "mount path must be absolute"),
        ("/host:/", "destination can't be '/'"),
        ("/host:/x:rx", "invalid mode: rx"),
        ("/host:/x:nocopy", "invalid mode: nocopy"),
        ("vol:/x:rshared", "invalid mode: rshared"),
        ("/host:/x:ro,rw", "invalid mode"),
        ("a:b:c:d", "invalid volume specification"),
    ],
)
def test_parse_volume_errors_follow_docker(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_volume(text)


def test_parse_mount_reads_docker_keys() -> None:
    bind = parse_mount("type=bind,src=/srv,dst=/data,readonly,bind-propagation=rslave")
    assert bind == MountSpec(type="bind", source="/srv", target="/data", read_only=True, propagation="rslave")
    assert not bind.create_source  # --mount refuses a missing source, unlike -v
    volume = parse_mount("source=cache,target=/cache,volume-label=a=b,volume-nocopy,ro=false")
    assert volume.type == "volume"
    assert dict(volume.volume_labels) == {"a": "b"}
    assert volume.volume_nocopy
    assert not volume.read_only
    tmpfs = parse_mount("type=tmpfs,destination=/scratch,tmpfs-size=64m,tmpfs-mode=1770")
    assert (tmpfs.tmpfs_size, tmpfs.tmpfs_mode) == (64 << 20, 0o1770)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type=bind,target=/x", "field Source must not be empty"),
        ("type=tmpfs,source=x,target=/x", "field Source must not be specified"),
        (
            "type=bind,source=/a,target=/x,volume-nocopy",
            "cannot mix 'volume-nocopy' options with mount type 'bind'",
        ),
        ("type=volume,source=v,target=/x,tmpfs-size=1m", "cannot mix 'tmpfs-size'"),
        ("type=nfs,target=/x", 'invalid mount type "nfs"'),
        ("source=v", "target is required"),
        ("type=volume,target=/x,colour=red", "unexpected key 'colour'"),
        ("type=volume,target", "must be a key=value pair"),
        ("type=bind,source=rel,target=/x", "mount path must be absolute"),
    ],
)
def test_parse_mount_errors_follow_docker(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_mount(text)


def test_parse_tmpfs_checks_options() -> None:
    assert parse_tmpfs("/run:rw,size=64m,mode=1777") == ("/run", "rw,size=64m,mode=1777")
    assert parse_tmpfs("/run") == ("/run", "")
    with pytest.raises(InvalidArgument, match='invalid tmpfs option "bogus"'):
        parse_tmpfs("/run:bogus")
    with pytest.raises(InvalidArgument, match="must be absolute"):
        parse_tmpfs("run")


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("no", RestartPolicy()),
        ("always", RestartPolicy(name="always")),
        ("unless-stopped", RestartPolicy(name="unless-stopped")),
        ("on-failure", RestartPolicy(name="on-failure")),
        ("on-failure:3", RestartPolicy(name="on-failure", max_retries=3)),
    ],
)
def test_parse_restart_policies(text: str, policy: RestartPolicy) -> None:
    assert parse_restart(text) == policy
    assert parse_restart(policy.to_text()) == policy


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sometimes", "invalid restart policy format"),
        ("always:3", "maximum retry count cannot be used with restart policy 'always'"),
        ("on-failure:-1", "cannot be negative"),
        ("on-failure:x", "must be an integer"),
    ],
)
def test_parse_restart_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_restart(text)


def test_parse_env_takes_bare_names_from_the_environment() -> None:
    assert parse_env("A=1", {}) == "A=1"
    assert parse_env("HOME", {"HOME": "/root"}) == "HOME=/root"
    assert parse_env("MISSING", {}) is None
    with pytest.raises(InvalidArgument):
        parse_env("=x", {})


def test_parse_env_file_follows_docker_rules(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_bytes(b'\xef\xbb\xbf# comment\n\n  A=1\nB="quoted value"\nFROM_HOST\nUNSET\nC=\n')
    assert parse_env_file(str(env_file), {"FROM_HOST": "yes"}) == (
        "A=1",
        'B="quoted value"',
        "FROM_HOST=yes",
        "C=",
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"BAD NAME=1\n", "contains whitespaces"),
        (b"=1\n", "no variable name"),
        (b"A=\xff\n", "invalid utf8 bytes at line 1"),
    ],
)
def test_parse_env_file_errors(tmp_path: Path, content: bytes, message: str) -> None:
    env_file = tmp_path / "env"
    env_file.write_bytes(content)
    with pytest.raises(InvalidArgument, match=message):
        parse_env_file(str(env_file), {})


def test_parse_env_file_missing_file_is_invalid_argument(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="no such file or directory"):
        parse_env_file(str(tmp_path / "nope"))


def test_collect_env_puts_env_files_before_flags(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("A=file\n")
    assert collect_env(["A=flag", "B=2"], [str(env_file)], {}) == ("A=file", "A=flag", "B=2")


def test_parse_sysctl_allows_only_namespaced_keys() -> None:
    assert parse_sysctl("net.core.somaxconn=1024") == ("net.core.somaxconn", "1024")
    assert parse_sysctl("kernel.shmmax=1") == ("kernel.shmmax", "1")
    assert parse_sysctl("fs.mqueue.msg_max=20") == ("fs.mqueue.msg_max", "20")
    for text in ("kernel.hostname=x", "vm.swappiness=1", "kernel.panic=1"):
        with pytest.raises(InvalidArgument, match="is not namespaced"):
            parse_sysctl(text)
    with pytest.raises(InvalidArgument, match="key=value"):
        parse_sysctl("net.core.somaxconn")


def test_parse_security_opt_canonical_forms() -> None:
    assert parse_security_opt("no-new-privileges") == "no-new-privileges=true"
    assert parse_security_opt("no-new-privileges:false") == "no-new-privileges=false"
    assert parse_security_opt("seccomp=unconfined") == "seccomp=unconfined"
    assert parse_security_opt("seccomp:/x.json") == "seccomp=/x.json"
    assert parse_security_opt("systempaths=unconfined") == "systempaths=unconfined"
    assert parse_security_opt("label=disable") == "label=disable"
    for text, message in (
        ("foo", "invalid security option"),
        ("no-new-privileges=maybe", "true or false"),
        ("colour=red", 'unknown option "colour"'),
        ("systempaths=x", "systempaths=unconfined"),
    ):
        with pytest.raises(InvalidArgument, match=message):
            parse_security_opt(text)


def test_parse_capability_normalises_names() -> None:
    assert parse_capability("sys_admin") == "CAP_SYS_ADMIN"
    assert parse_capability("CAP_NET_ADMIN") == "CAP_NET_ADMIN"
    assert parse_capability("all") == "ALL"
    with pytest.raises(InvalidArgument, match='unknown capability: "CAP_FLY"'):
        parse_capability("fly")


def test_parse_signal_keeps_docker_spelling() -> None:
    assert parse_signal("term") == "SIGTERM"
    assert parse_signal("SIGUSR1") == "SIGUSR1"
    assert parse_signal("9") == "9"
    with pytest.raises(InvalidArgument, match="invalid signal: SIGFOO"):
        parse_signal("SIGFOO")


def test_parse_log_opt_checks_json_file_options() -> None:
    assert parse_log_opt("max-size=10m") == ("max-size", "10m")
    assert parse_log_opt("max-file=3") == ("max-file", "3")
    with pytest.raises(InvalidArgument, match="unknown log opt 'colour' for json-file log driver"):
        parse_log_opt("colour=red")
    with pytest.raises(InvalidArgument, match="max-file cannot be less than 1"):
        parse_log_opt("max-file=0")
    with pytest.raises(InvalidArgument, match="invalid size"):
        parse_log_opt("max-size=big")


def test_parse_label_and_network() -> None:
    assert parse_label("a=b=c") == ("a", "b=c")
    assert parse_label("flag") == ("flag", "")
    assert parse_network("none") == NetworkMode(kind="none")
    assert parse_network("default") == parse_network("") == NetworkMode(kind="bridge") == NetworkMode()
    assert parse_network("bridge") == NetworkMode(kind="bridge")
    assert parse_network("container:web") == NetworkMode(kind="container", name="web")
    assert parse_network("mynet") == NetworkMode(kind="network", name="mynet")
    with pytest.raises(InvalidArgument, match="container:NAME"):
        parse_network("container:")


@pytest.mark.parametrize(
    ("text", "shown", "is_host", "own_namespace"),
    [
        ("default", "bridge", False, True),
        ("none", "none", False, True),
        ("host", "host", True, False),
        ("bridge", "bridge", False, True),
        ("container:web", "container:web", False, False),
        ("mynet", "mynet", False, True),
    ],
)
def test_network_mode_answers_what_the_engine_asks(
    text: str, shown: str, is_host: bool, own_namespace: bool
) -> None:
    mode = parse_network(text)
    assert (mode.to_text(), mode.is_host, mode.own_namespace) == (shown, is_host, own_namespace)
    assert parse_network(mode.to_text()) == mode


def test_no_parser_message_names_a_flag() -> None:
    bad = [
        (parse_bytes, "12x"), (parse_cpus, "x"), (parse_ulimit, "nofile"), (parse_capability, "fly"),
        (parse_device, "dev/a"), (parse_sysctl, "kernel.hostname=x"), (parse_tmpfs, "run"),
        (parse_restart, "sometimes"), (parse_log_opt, "max-file=0"), (parse_signal, "SIGFOO"),
        (parse_security_opt, "foo"), (parse_mount, "type=volume,target"), (parse_volume, "a:b:c:d"),
    ]  # fmt: skip
    for parse, text in bad:
        with pytest.raises(InvalidArgument) as caught:
            parse(text)
        assert "--" not in caught.value.message, caught.value.message
