"""The root's config.toml reader: docker's daemon.json keys, typed, with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.engine.config import AddressPool, EngineConfig, RuntimeEntry, load_config
from pallet.errors import InvalidArgument


def test_a_changed_file_is_read_again_and_an_unchanged_one_from_its_kept_document(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('default-runtime = "runc"\n')
    assert load_config(str(tmp_path)).default_runtime == "runc"
    assert (tmp_path / ".config.toml.json").exists()
    assert load_config(str(tmp_path)).default_runtime == "runc"
    path.write_text('default-runtime = "crun"\n')  # same size, maybe the same mtime: the text decides
    assert load_config(str(tmp_path)).default_runtime == "crun"


def test_absent_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(str(tmp_path)) == EngineConfig()


def test_every_key_is_read(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'default-runtime = "runsc"\n'
        'userns-remap = "default"\n'
        'insecure-registries = ["127.0.0.1:5000"]\n'
        "[runtimes.runsc]\n"
        'path = "/usr/bin/runsc"\n'
        'runtimeArgs = ["--ignore-cgroups"]\n'
        "[[default-address-pools]]\n"
        'base = "172.80.0.0/16"\n'
        "size = 24\n"
    )
    config = load_config(str(tmp_path))
    assert config.runtimes == {"runsc": RuntimeEntry(path="/usr/bin/runsc", args=("--ignore-cgroups",))}
    assert config.default_runtime == "runsc"
    assert config.userns_remap == "default"
    assert config.insecure_registries == ("127.0.0.1:5000",)
    assert config.address_pools == (AddressPool(base="172.80.0.0/16", size=24),)
    assert config.source == str(tmp_path / "config.toml")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("default-runtime = 3\n", '"default-runtime" must be a string'),
        ("[runtimes.x]\nruntimeArgs = []\n", 'runtime "x" needs a "path"'),
        ('[runtimes.x]\npath = "/bin/x"\nruntimeArgs = "a"\n', '"runtimeArgs" must be a list of strings'),
        ('[[default-address-pools]]\nbase = "10.0.0.0/16"\n', "needs a base (CIDR) and a size"),
        ('[[default-address-pools]]\nbase = "nope"\nsize = 24\n', '"nope" is not a network'),
        ('[[default-address-pools]]\nbase = "10.0.0.0/16"\nsize = 8\n', "size 8 must be between 16 and 32"),
        ("= broken", "not valid TOML"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    for _ in range(2):  # a bad file is never kept: the second read says the same
        with pytest.raises(InvalidArgument, match=str(tmp_path)) as caught:
            load_config(str(tmp_path))
        assert words in caught.value.message
