from __future__ import annotations

import json

import pytest

from pallet.errors import InvalidArgument, SpecError, Unsupported
from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.oci.image_spec import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    chain_ids,
    dumps,
    parse_manifest,
)

A, B, C = ("sha256:" + c * 64 for c in "abc")

# Hand-written from the specs and from what docker, buildkit and registries serve.
OCI_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": A, "size": 581},
    "layers": [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": B, "size": 2152262},
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
            "digest": C,
            "size": 32,
            "annotations": {"org.opencontainers.image.title": "extra"},
        },
    ],
    "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": C, "size": 7},
    "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
}

DOCKER_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1457, "digest": A},
    "layers": [
        {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2152262, "digest": B},
        {
            "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "size": 1024,
            "digest": C,
            "urls": ["https://example.com/layer.tar.gz"],
        },
    ],
}

DOCKER_MANIFEST_LIST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests": [
        {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 527,
            "digest": A,
            "platform": {"architecture": "amd64", "os": "linux"},
        },
        {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 527,
            "digest": B,
            "platform": {"architecture": "arm", "os": "linux", "variant": "v7"},
        },
        {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 527,
            "digest": C,
            "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.5122"},
        },
    ],
}

OCI_INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": A,
            "size": 1000,
            "platform": {"architecture": "arm64", "os": "linux", "variant": "v8", "os.features": ["x"]},
        },
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": B,
            "size": 566,
            "annotations": {
                "vnd.docker.reference.digest": A,
                "vnd.docker.reference.type": "attestation-manifest",
            },
            "platform": {"architecture": "unknown", "os": "unknown"},
        },
    ],
    "annotations": {"org.opencontainers.image.ref.name": "latest"},
}

# docker's own config format: capitalised keys, explicit nulls, keys OCI does not define
DOCKER_CONFIG = {
    "architecture": "amd64",
    "config": {
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "Tty": False,
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
        "Image": "sha256:" + "d" * 64,
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": None,
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30000000000, "Retries": 3},
        "StopSignal": "SIGQUIT",
        "Shell": ["/bin/bash", "-c"],
    },
    "container": "1f0c6a8b9d",
    "container_config": {"Cmd": ["/bin/sh", "-c", '#(nop) CMD ["sh"]'], "Labels": {}},
    "created": "2023-07-18T23:19:33.655005962Z",
    "docker_version": "20.10.23",
    "history": [
        {
            "created": "2023-07-18T23:19:33.538571854Z",
            "created_by": "/bin/sh -c #(nop) ADD file:7e9002 in / ",
        },
        {
            "created": "2023-07-18T23:19:33.655005962Z",
            "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
            "empty_layer": True,
        },
    ],
    "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": [B]},
}

OCI_CONFIG = {
    "created": "2024-01-01T00:00:00Z",
    "author": "pallet",
    "architecture": "arm",
    "variant": "v7",
    "os": "linux",
    "config": {
        "User": "1000:1000",
        "ExposedPorts": {"8080/tcp": {}},
        "Env": ["A=1"],
        "Entrypoint": ["/app"],
        "Cmd": ["--serve"],
        "Volumes": {"/data": {}},
        "WorkingDir": "/srv",
        "Labels": {"org.opencontainers.image.version": "1.0"},
        "StopSignal": "SIGTERM",
        "ArgsEscaped": True,
    },
    "rootfs": {"type": "layers", "diff_ids": [A, B]},
    "history": [{"created_by": "COPY app /app", "comment": "buildkit.dockerfile.v0"}, {"created_by": "x"}],
}


@pytest.mark.parametrize(
    ("cls", "doc"),
    [
        (Manifest, OCI_MANIFEST),
        (Manifest, DOCKER_MANIFEST),
        (Index, DOCKER_MANIFEST_LIST),
        (Index, OCI_INDEX),
        (ImageConfig, DOCKER_CONFIG),
        (ImageConfig, OCI_CONFIG),
    ],
    ids=["oci-manifest", "docker-manifest", "docker-list", "oci-index", "docker-config", "oci-config"],
)
def test_documents_round_trip_to_the_same_json(
    cls: type[Manifest | Index | ImageConfig], doc: dict[str, object]
) -> None:
    parsed = cls.from_json(json.loads(json.dumps(doc)))
    assert json.loads(dumps(parsed.to_json())) == doc


def test_docker_config_fields_are_read_from_docker_spellings() -> None:
    config = ImageConfig.from_json(DOCKER_CONFIG)
    assert config.config is not None
    assert config.config.cmd == ("sh",)
    assert config.config.entrypoint is None
    assert config.config.exposed_ports == ("80/tcp", "53/udp")
    assert config.config.healthcheck is not None
    assert config.config.healthcheck.interval == 30_000_000_000
    assert config.rootfs.diff_ids == (B,)
    assert config.history[1].empty_layer is True
    assert config.extra["docker_version"] == "20.10.23"


def test_index_platforms_keep_os_version_and_variant() -> None:
    index = Index.from_json(DOCKER_MANIFEST_LIST)
    platforms = [m.platform for m in index.manifests]
    assert platforms[1] == Platform(architecture="arm", os="linux", variant="v7")
    assert platforms[2] is not None
    assert platforms[2].os_version == "10.0.17763.5122"
    assert str(platforms[1]) == "linux/arm/v7"


@pytest.mark.parametrize(
    ("cls", "doc", "path", "problem"),
    [
        (
            Manifest,
            {
                **OCI_MANIFEST,
                "layers": [OCI_MANIFEST["layers"][0], {**OCI_MANIFEST["layers"][0], "digest": "sha256:xyz"}],
            },
            "layers[1].digest",
            "invalid digest",
        ),  # type: ignore[index]
        (
            Manifest,
            {**OCI_MANIFEST, "config": {**OCI_MANIFEST["config"], "size": -1}},
            "config.size",
            "negative",
        ),  # type: ignore[dict-item]
        (
            Manifest,
            {**OCI_MANIFEST, "config": {**OCI_MANIFEST["config"], "size": "12"}},
            "config.size",
            "expected an integer",
        ),  # type: ignore[dict-item]
        (Manifest, {k: v for k, v in OCI_MANIFEST.items() if k != "config"}, "config", "required"),
        (Manifest, {**OCI_MANIFEST, "schemaVersion": 3}, "schemaVersion", "unsupported schema version"),
        (Manifest, {**OCI_MANIFEST, "mediaType": mediatypes.OCI_INDEX}, "mediaType", "unexpected media type"),
        (
            Index,
            {
                **OCI_INDEX,
                "manifests": [{"mediaType": "x", "digest": A, "size": 1, "platform": {"os": "linux"}}],
            },
            "manifests[0].platform.architecture",
            "required",
        ),
        (
            ImageConfig,
            {**OCI_CONFIG, "rootfs": {"type": "layers", "diff_ids": [A, 5]}},
            "rootfs.diff_ids[1]",
            "expected a digest",
        ),
        (
            ImageConfig,
            {**OCI_CONFIG, "rootfs": {"type": "files", "diff_ids": []}},
            "rootfs.type",
            'must be "layers"',
        ),
        (ImageConfig, {**OCI_CONFIG, "config": {"Env": ["A=1", 2]}}, "config.Env[1]", "expected a string"),
        (ImageConfig, {**OCI_CONFIG, "config": {"Labels": {"a": 1}}}, "config.Labels.a", "expected a string"),
        (ImageConfig, {k: v for k, v in OCI_CONFIG.items() if k != "os"}, "os", "required"),
        (ImageConfig, [], "", "expected a JSON object"),
    ],
)
def test_bad_documents_name_the_json_path_of_the_bad_field(
    cls: type[Manifest | Index | ImageConfig], doc: object, path: str, problem: str
) -> None:
    with pytest.raises(SpecError) as info:
        cls.from_json(doc)
    assert info.value.path == path
    assert problem in info.value.problem


def test_schema1_manifests_are_refused_as_unsupported() -> None:
    with pytest.raises(Unsupported, match="schema1"):
        parse_manifest(json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode())
    with pytest.raises(Unsupported, match="schema1"):
        parse_manifest(b"{}", mediatypes.DOCKER_MANIFEST_V1_SIGNED)


def test_parse_manifest_tells_manifests_from_indexes() -> None:
    assert isinstance(parse_manifest(json.dumps(DOCKER_MANIFEST).encode()), Manifest)
    assert isinstance(parse_manifest(json.dumps(OCI_INDEX).encode()), Index)
    no_type = {k: v for k, v in OCI_INDEX.items() if k != "mediaType"}
    assert isinstance(parse_manifest(json.dumps(no_type).encode()), Index)
    with pytest.raises(SpecError, match="served as"):
        parse_manifest(json.dumps(DOCKER_MANIFEST).encode(), mediatypes.OCI_MANIFEST)


def test_invalid_json_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="manifest is not valid JSON"):
        parse_manifest(b"{not json")


def test_descriptor_digest_is_validated_and_typed() -> None:
    d = Descriptor.from_json({"mediaType": mediatypes.OCI_LAYER, "digest": A, "size": 3})
    assert isinstance(d.digest, Digest)
    with pytest.raises(InvalidArgument):
        Descriptor.from_json({"mediaType": mediatypes.OCI_LAYER, "digest": "nope", "size": 3})


def test_chain_ids_follow_the_spec_formula() -> None:
    ids = chain_ids([Digest(A), Digest(B), Digest(C)])
    assert ids[0] == A
    assert ids[1] == Digest.of_bytes(f"{A} {B}".encode())
    assert ids[2] == Digest.of_bytes(f"{ids[1]} {C}".encode())


def test_media_type_classification_covers_both_families() -> None:
    assert mediatypes.is_manifest(mediatypes.DOCKER_MANIFEST)
    assert mediatypes.is_manifest(mediatypes.OCI_MANIFEST)
    assert mediatypes.is_index(mediatypes.DOCKER_MANIFEST_LIST)
    assert mediatypes.is_index(mediatypes.OCI_INDEX)
    assert mediatypes.layer_compression(mediatypes.DOCKER_LAYER) == "gzip"
    assert mediatypes.layer_compression(mediatypes.OCI_LAYER_ZSTD) == "zstd"
    assert mediatypes.is_foreign_layer(mediatypes.DOCKER_FOREIGN_LAYER)
    with pytest.raises(Unsupported):
        mediatypes.layer_compression("text/plain")
