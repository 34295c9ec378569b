"""``POST /containers/create``'s body onto the engine's run options."""

from __future__ import annotations

from pallet.api.container_config import run_options


def _targets(body: dict[str, object]) -> list[tuple[str, str, str]]:
    _, options = run_options(body, None)
    return [(spec.type, spec.source, spec.target) for spec in options.mounts.specs]


def test_config_volumes_that_binds_or_mounts_cover_make_no_anonymous_volume() -> None:
    body = {
        "Image": "busybox",
        "Volumes": {"/data": {}, "/www/": {}, "/cache": {}, "/scratch": {}},
        "HostConfig": {
            "Binds": ["content:/data:rw"],
            "Mounts": [{"Type": "volume", "Source": "web", "Target": "/www"}],
            "Tmpfs": {"/scratch": ""},
        },
    }
    assert _targets(body) == [
        ("volume", "content", "/data"),
        ("volume", "web", "/www"),
        ("volume", "", "/cache"),
    ]


def test_config_volumes_alone_are_anonymous_volumes() -> None:
    assert _targets({"Image": "busybox", "Volumes": {"/a": {}}}) == [("volume", "", "/a")]
