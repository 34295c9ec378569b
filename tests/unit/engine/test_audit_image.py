"""``image_findings``: root user, setuid/setgid files the last layer leaves, secrets in ENV and history."""

from __future__ import annotations

from pallet.engine.audit import image_findings
from pallet.image.tarstream import DIR, REG, TarEntry
from pallet.oci.image_spec import ContainerConfig, History, ImageConfig


def _config(user: str = "app", env: tuple[str, ...] = (), history: tuple[str, ...] = ()) -> ImageConfig:
    return ImageConfig(
        architecture="amd64",
        os="linux",
        config=ContainerConfig(user=user, env=env),
        history=tuple(History(created_by=line) for line in history),
    )


def _settings(config: ImageConfig, *layers: list[TarEntry]) -> dict[str, str]:
    entries = [(i, e) for i, layer in enumerate(layers) for e in layer]
    return {f.setting: f.severity for f in image_findings(config, entries)}


def test_a_clean_non_root_image_has_no_finding() -> None:
    layer = [TarEntry("bin/", DIR, mode=0o755), TarEntry("bin/app", REG, mode=0o755)]
    assert _settings(_config(env=("PATH=/bin", "TOKEN_URL=", "LOG_LEVEL=debug")), layer) == {}


def test_root_users_are_found() -> None:
    assert _settings(_config(user="")) == {"no USER (root)": "medium"}
    assert _settings(_config(user="0:0")) == {"USER root": "medium"}
    assert _settings(_config(user="root")) == {"USER root": "medium"}


def test_secrets_in_env_by_name_and_by_value_are_high_and_masked() -> None:
    config = _config(
        env=(
            "DB_PASSWORD=correct-horse",
            "GITHUB_TOKEN=abc123abc123",
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
            "HARMLESS=AKIAIOSFODNN7EXAMPLE",
            "CERT=-----BEGIN RSA PRIVATE KEY-----MIIE",
        )
    )
    findings = image_findings(config, [])
    assert {f.setting: f.severity for f in findings} == {
        "ENV DB_PASSWORD": "high",
        "ENV GITHUB_TOKEN": "high",
        "ENV AWS_SECRET_ACCESS_KEY": "high",
        "ENV HARMLESS": "high",
        "ENV CERT": "high",
    }
    text = " ".join(f.escape for f in findings)
    assert "correct-horse" not in text
    assert "an AWS access key id" in text
    assert "a private key" in text


def test_secrets_in_build_history_are_found() -> None:
    config = _config(
        history=(
            "/bin/sh -c #(nop)  ENV API_KEY=sk-live-1234567890",
            "|1 NPM_TOKEN=npm_abcdefgh /bin/sh -c npm install",
            "/bin/sh -c echo hello",
            "/bin/sh -c curl -H 'Authorization: ghp_0123456789abcdefghijklmnopqrstuvwxyzAB' x",
            "/bin/sh -c #(nop)  ENV DB_PASSWORD hunter22",
        )
    )
    assert _settings(config) == {
        "history step 1": "high",
        "history step 2": "high",
        "history step 4": "high",
        "history step 5": "high",
    }


def test_setuid_files_are_the_ones_the_last_layers_leave() -> None:
    lower = [
        TarEntry("bin/su", REG, mode=0o4755),
        TarEntry("bin/passwd", REG, mode=0o4755),
        TarEntry("usr/bin/wall", REG, mode=0o2755, gid=5),
        TarEntry("opt/tool/run", REG, mode=0o4755),
    ]
    upper = [
        TarEntry("bin/.wh.passwd", REG),  # removed
        TarEntry("bin/su", REG, mode=0o755),  # replaced without the bit
        TarEntry("opt/tool/.wh..wh..opq", REG),  # directory emptied
        TarEntry("./sbin/newuidmap", REG, mode=0o4755),
    ]
    assert _settings(_config(), lower, upper) == {
        "/usr/bin/wall (setgid, gid 5)": "low",
        "/sbin/newuidmap (setuid, uid 0)": "low",
    }
