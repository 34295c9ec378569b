"""``pallet events``: what any pallet process did to containers, images, networks and volumes, live.

Thin: docker's flags (``--since``, ``--until``, ``--filter``, ``--format``)
go to the engine's surface (``pallet.engine.service.events``), which reads the
root's events file; each event prints as docker prints it::

    2026-12-07T06:40:21.123456789Z container start 3f4e… (image=busybox, name=web)
"""

from __future__ import annotations

import time

from pallet.cli.exits import UsageError
from pallet.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace
    from pallet.engine.service import Event

__all__ = ["configure_events", "event_line"]


def _timestamp(ns: int) -> str:
    """Go's RFC3339NanoFixed in local time, as the docker CLI prints an event's time."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    local = time.localtime(seconds)
    offset = local.tm_gmtoff or 0
    zone = (
        "Z"
        if offset == 0
        else f"{'+' if offset > 0 else '-'}{abs(offset) // 3600:02}:{abs(offset) % 3600 // 60:02}"
    )
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{fraction:09d}{zone}"


def event_line(event: Event) -> str:
    """One event as ``docker events`` prints it by default."""
    attributes = ", ".join(f"{k}={v}" for k, v in sorted(event.attributes.items()))
    line = f"{_timestamp(event.time_nano)} {event.type} {event.action} {event.actor_id}"
    return f"{line} ({attributes})" if attributes else line


def _template_value(event: Event) -> dict[str, object]:
    """The fields a ``--format`` template sees (docker's ``events.Message``)."""
    doc = event.to_json()
    return {
        "Status": doc.get("status", ""),
        "ID": doc.get("id", ""),
        "From": doc.get("from", ""),
        "Type": event.type,
        "Action": event.action,
        "Actor": {"ID": event.actor_id, "Attributes": event.attributes},
        "Scope": "local",
        "Time": doc["time"],
        "TimeNano": event.time_nano,
    }


def _run(ctx: Context, args: Namespace) -> int:
    import json

    from pallet.cli.templates import Template
    from pallet.engine.service import event_filters, events

    try:
        filters = event_filters(args.filter)
        stream = events(ctx.root, since=args.since, until=args.until, filters=filters)
        fmt = args.format
        template = None if fmt in (None, "", "json") else Template(fmt)
        for event in stream:
            if event is None:
                continue
            if fmt == "json":
                line = json.dumps(event.to_json(), separators=(",", ":"))
            elif template is not None:
                line = template.render(_template_value(event))
            else:
                line = event_line(event)
            ctx.out.write(line + "\n")
            ctx.out.flush()
    except InvalidArgument as e:
        raise UsageError(e.message, "events") from None
    except KeyboardInterrupt:
        return 0
    return 0


def configure_events(parser: FlagParser) -> None:
    parser.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        help="filter output: container, image, event, label, type, network, volume (KEY=VALUE)",
    )
    parser.add_argument("--format", help="'json' or a Go template")
    parser.add_argument("--since", help="show all events created since timestamp")
    parser.add_argument("--until", help="stream events until this timestamp")
    parser.set_defaults(run=_run)
