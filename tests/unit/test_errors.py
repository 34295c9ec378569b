from __future__ import annotations

from pallet.errors import InvalidArgument, PalletError, SpecError, SystemError_, errno_text


def test_spec_error_names_the_field() -> None:
    err = SpecError("linux.namespaces[2].type", 'unknown namespace "foo"')
    assert str(err) == 'linux.namespaces[2].type: unknown namespace "foo"'
    assert isinstance(err, InvalidArgument)
    assert isinstance(err, PalletError)
    assert err.http_status == 400


def test_errno_text_is_go_style_lowercase() -> None:
    assert errno_text(2) == "no such file or directory"
    assert errno_text(13) == "permission denied"
    assert errno_text(121)[0].islower()
    assert str(SystemError_("mount /proc", 1)) == "mount /proc: operation not permitted"
