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


# --- categories: every error says what kind it is, and the kind alone gives its codes ---------

# exceptions in src/ that are not PalletErrors, each with the reason it never reaches a user as one
NOT_USER_ERRORS = {
    "pallet.cli.flags.HelpRequested": "control flow: --help was given, the help is printed",
    "pallet.registry.server.errorcodes.RegistryError": "the registry server's own error: a distribution-spec code and status",
    "pallet.registry.server.tokens.TokenError": "the registry server turns it into a 401 with a distribution-spec code",
    "pallet.registry.client.pull._Cancelled": "control flow: stops the other downloads after one failed",
    "pallet.registry.server.serve._Stop": "control flow: a signal ends the server's loop",
    "pallet.engine.shim.supervisor._Relayed": "carries a setup child's report line (a category already) to pass on",
    "pallet.build.dockerfile.parser._Syntax": "the parser turns it into Dockerfile:LINE, an InvalidArgument",
    "pallet.build.dockerfile.flags.FlagError": "the parser and builder name the instruction and line around it",
    "pallet.build.dockerfile.expansion.ExpansionError": "the parser and builder name the instruction and line around it",
    "pallet.build.dockerfile.words.JsonArrayError": "the parser turns it into Dockerfile:LINE, an InvalidArgument",
}


def _exception_classes() -> list[type[BaseException]]:
    import importlib
    import pkgutil

    import pallet

    found: dict[str, type[BaseException]] = {}
    for module in pkgutil.walk_packages(pallet.__path__, "pallet."):
        if module.name.endswith("__main__") or module.name.startswith("pallet.testing"):
            continue
        mod = importlib.import_module(module.name)
        for value in vars(mod).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == mod.__name__
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_every_error_class_in_src_states_its_category() -> None:
    from pallet import errors

    classes = _exception_classes()
    assert len(classes) > 20  # the walk found the modules
    missing = []
    others = set()
    for cls in classes:
        name = f"{cls.__module__}.{cls.__qualname__}"
        if not issubclass(cls, PalletError):
            others.add(name)
        elif cls is not PalletError and not isinstance(cls.__dict__.get("category"), errors.Category):
            missing.append(name)
    assert missing == []
    assert others == set(NOT_USER_ERRORS)


def test_the_category_alone_gives_the_http_status_and_the_exit_code() -> None:
    from pallet import errors

    table = {
        errors.NotFound: (404, 1),
        errors.AlreadyExists: (409, 1),
        errors.InvalidArgument: (400, 1),
        errors.Conflict: (409, 1),
        errors.FailedPrecondition: (409, 1),
        errors.Unauthenticated: (401, 1),
        errors.Unavailable: (503, 1),
        errors.Unsupported: (501, 1),
        errors.DataLoss: (500, 1),
        errors.Unknown: (500, 1),
        errors.CommandNotFound: (400, 127),
        errors.CommandNotExecutable: (400, 126),
    }
    for cls, (status, code) in table.items():
        error = cls("x")
        assert (errors.http_status_of(error), errors.exit_code_of(error, 1)) == (status, code), cls
    # a command's own failure code stands in where the category has none (run: docker's 125)
    assert errors.exit_code_of(errors.NotFound("x"), 125) == 125
    assert errors.exit_code_of(errors.CommandNotFound("x"), 125) == 127
    assert errors.http_status_of(SystemError_("mount /proc", 1)) == 500


def test_a_category_name_crosses_a_process_boundary_and_comes_back_the_same_error() -> None:
    from pallet import errors

    for cls in (errors.NotFound, errors.Conflict, errors.DataLoss, errors.CommandNotFound, errors.Unknown):
        error = cls("it went wrong")
        back = errors.from_category(error.category.name, error.message)
        assert type(back) is cls
        assert back.message == "it went wrong"
    system = errors.from_category(
        SystemError_("mount /proc", 1).category.name, "mount /proc: operation not permitted"
    )
    assert isinstance(system, SystemError_)
    assert str(system) == "mount /proc: operation not permitted"
    assert type(errors.from_category("no-such-category", "x")) is errors.Unknown


def test_registry_transfer_errors_refine_their_category_with_sysexits() -> None:
    from pallet.registry.client import errors as transfer

    assert [transfer.DigestMismatch("x").category.name, transfer.DigestMismatch.exit_code] == [
        "data-loss",
        65,
    ]
    assert transfer.ManifestUnknown("x").http_status == 404
    assert transfer.Unauthorized("x").http_status == 401


def test_no_code_raises_the_base_class_itself() -> None:
    import ast
    import pathlib

    import pallet

    calls = []
    for path in pathlib.Path(pallet.__path__[0]).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "PalletError":
                calls.append(f"{path.name}:{node.lineno}")
    assert calls == []
