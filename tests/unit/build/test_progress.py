"""Build progress: BuildKit's plain lines, and the live tty view that folds a finished step's output."""

from __future__ import annotations

import io

from pallet.build.progress import Progress


def test_plain_lines_number_steps_and_time_output() -> None:
    out = io.StringIO()
    progress = Progress(out)
    step = progress.step("[1/2] RUN echo hi")
    step.output(b"hi\npart")
    step.done()
    progress.step("[2/2] COPY a /a").cached()
    lines = out.getvalue().splitlines()
    assert lines[0] == "#1 [1/2] RUN echo hi"
    assert lines[1].startswith("#1 ")
    assert lines[1].endswith(" hi")
    assert lines[2].endswith(" part")  # a last line without newline is flushed at the end
    assert lines[3].startswith("#1 DONE ")
    assert lines[4:] == ["#2 [2/2] COPY a /a", "#2 CACHED"]


def test_tty_view_folds_the_output_of_a_finished_step() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=True)
    step = progress.step("[1/1] RUN make")
    step.output(b"compiling\nlinking\n")
    step.done()
    text = out.getvalue()
    assert "=> => # compiling\n" in text
    assert "\x1b[3F\x1b[J=> [1/1] RUN make  " in text  # title + 2 output lines folded into one


def test_tty_view_keeps_a_failed_steps_output() -> None:
    out = io.StringIO()
    step = Progress(out, tty=True).step("[1/1] RUN false")
    step.output(b"boom\n")
    step.error("exit code: 1")
    assert out.getvalue().endswith("=> => # boom\n=> ERROR [1/1] RUN false: exit code: 1\n")


def test_quiet_prints_nothing() -> None:
    step = Progress(None).step("[1/1] RUN x")
    step.output(b"y\n")
    step.done()
    assert step.tail == ["y"]


def test_stderr_goes_to_the_sink_as_written_after_the_pending_stdout() -> None:
    """The API's legacy stream marks a RUN's stderr: the sink gets each write whole, after the stdout
    written before it; without a sink stderr is output like stdout; an error's tail has both."""
    out, sunk = io.StringIO(), []
    progress = Progress(out, stderr=sunk.append)
    step = progress.step("[1/1] RUN x")
    step.output(b"partial")
    step.output_stderr(b"warn\n")
    assert out.getvalue().splitlines()[-1].endswith(" partial")
    assert sunk == ["warn\n"]
    assert step.tail[-2:] == ["partial", "warn"]
    plain = io.StringIO()
    Progress(plain).step("[1/1] RUN y").output_stderr(b"warn\n")
    assert plain.getvalue().splitlines()[-1].endswith(" warn")
