"""``pallet audit``: which containers (or an image) give isolation away, and how to stop it.

Thin: the findings come from the engine's surface (``Service.audit``,
``Service.audit_image``: ``engine/audit.py`` over the one table in
``engine/spec/findings.py`` that ``run`` warns from). ``--format table``
(the default) prints one row per finding, most severe first, and a summary
line; a container with no finding prints nothing. ``--format json`` prints
every subject with its (maybe empty) list of findings. The exit status is 1
when any finding is ``high``, so CI can gate on it; 0 otherwise.
"""

from __future__ import annotations

from pallet.cli.exits import EXIT_FAILURE, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace
    from pallet.engine.service import Audit

__all__ = ["configure_audit"]

_HEADER = ("NAME", "SEVERITY", "SETTING", "ESCAPE", "FIX")


def _write_table(ctx: Context, audits: list[Audit]) -> None:
    from pallet.cli.tables import write_columns

    rows = [
        (audit.name, f.severity.upper(), f.setting, f.escape, f.fix)
        for audit in audits
        for f in audit.findings
    ]
    if not rows:
        return
    write_columns(ctx.out, [_HEADER, *rows])
    counts = {level: sum(1 for row in rows if row[1] == level) for level in ("HIGH", "MEDIUM", "LOW")}
    subjects = sum(1 for audit in audits if audit.findings)
    noun = audits[0].kind if subjects == 1 else f"{audits[0].kind}s"
    ctx.out.write(
        f"{len(rows)} finding{'s' if len(rows) != 1 else ''} in {subjects} {noun}: "
        f"{counts['HIGH']} high, {counts['MEDIUM']} medium, {counts['LOW']} low\n"
    )


def _run(ctx: Context, args: Namespace) -> int:
    import json

    from pallet.engine.service import Service

    if args.format not in ("table", "json"):
        raise UsageError(f'unknown --format "{args.format}": use table or json', "audit")
    if args.image is not None and (args.containers or args.all):
        raise UsageError("--image audits one image: name no container and no --all with it", "audit")
    if args.all and args.containers:
        raise UsageError("--all audits every container: name no container with it", "audit")
    with Service.open(ctx.root, ctx.run_root, leave_open=ctx.exits_after) as service:
        if args.image is not None:
            audits = [service.audit_image(args.image)]
        else:
            audits = service.audit(args.containers, all=args.all)
    if args.format == "json":
        ctx.out.write(json.dumps([a.to_json() for a in audits], indent=4) + "\n")
    else:
        _write_table(ctx, audits)
    return EXIT_FAILURE if any(a.high for a in audits) else 0


def configure_audit(parser: FlagParser) -> None:
    parser.add_argument("containers", nargs="*", metavar="CONTAINER")
    parser.add_argument(
        "-a", "--all", action="store_true", help="audit every container (default: running ones)"
    )
    parser.add_argument("--image", metavar="IMAGE", help="audit an image: root user, setuid files, secrets")
    parser.add_argument("--format", default="table", help="'table' (the default) or 'json'")
    parser.set_defaults(run=_run)
