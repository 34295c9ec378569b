"""``--change`` lines of ``pallet import`` edit the image's run config like docker's."""

from __future__ import annotations

import pytest

from pallet.errors import InvalidArgument
from pallet.image.changes import apply_changes
from pallet.oci.image_spec import ContainerConfig

BASE = ContainerConfig()


def test_cmd_json_form_is_kept_as_given() -> None:
    assert apply_changes(BASE, ['CMD ["sh"]']).cmd == ("sh",)


def test_cmd_shell_form_runs_through_sh() -> None:
    assert apply_changes(BASE, ["CMD echo hi"]).cmd == ("/bin/sh", "-c", "echo hi")


def test_entrypoint_and_lowercase_instruction() -> None:
    assert apply_changes(BASE, ['entrypoint ["/bin/busybox"]']).entrypoint == ("/bin/busybox",)


def test_env_pairs_replace_earlier_values() -> None:
    config = apply_changes(BASE, ["ENV PATH=/bin A=1", 'ENV A="two words"'])
    assert config.env == ("PATH=/bin", "A=two words")


def test_env_legacy_form_takes_the_rest_as_value() -> None:
    assert apply_changes(BASE, ["ENV GREETING hello world"]).env == ("GREETING=hello world",)


def test_label_expose_volume_workdir_user_stopsignal() -> None:
    config = apply_changes(
        BASE,
        ["LABEL a=b", "EXPOSE 80 53/udp", 'VOLUME ["/data"]', "VOLUME /cache", "WORKDIR /srv", "USER 1000:1000",
         "STOPSIGNAL SIGTERM"],
    )  # fmt: skip
    assert dict(config.labels) == {"a": "b"}
    assert config.exposed_ports == ("80/tcp", "53/udp")
    assert config.volumes == ("/data", "/cache")
    assert (config.working_dir, config.user, config.stop_signal) == ("/srv", "1000:1000", "SIGTERM")


def test_unknown_instruction_is_rejected_naming_it() -> None:
    with pytest.raises(InvalidArgument, match="RUN is not an instruction"):
        apply_changes(BASE, ["RUN rm -rf /"])


def test_bad_port_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="invalid port"):
        apply_changes(BASE, ["EXPOSE http"])


def test_instruction_without_argument_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="needs an argument"):
        apply_changes(BASE, ["WORKDIR"])
