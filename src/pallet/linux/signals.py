"""Signal names and numbers (x86_64), without importing the ``signal`` module (slow: it builds enums)."""

from __future__ import annotations

SIGNALS: dict[str, int] = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
    "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
    "TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
    "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
    "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}  # fmt: skip

SIGRTMIN = 34
SIGRTMAX = 64


def parse_signal(text: str) -> int | None:
    """A signal number from ``9``, ``KILL``, ``SIGKILL``, ``sigkill`` or ``RTMIN+3``; None if unknown."""
    if text.isdigit():
        number = int(text)
        return number if 0 < number <= SIGRTMAX else None
    name = text.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name.startswith(("RTMIN", "RTMAX")):
        base = SIGRTMIN if name.startswith("RTMIN") else SIGRTMAX
        rest = name[5:]
        if not rest:
            return base
        if len(rest) > 1 and rest[0] in "+-" and rest[1:].isdigit():
            number = base + int(rest) if rest[0] == "+" else base - int(rest[1:])
            return number if SIGRTMIN <= number <= SIGRTMAX else None
        return None
    return SIGNALS.get(name)
