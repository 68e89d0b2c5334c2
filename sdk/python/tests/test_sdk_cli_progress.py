"""The CLI's progress display: one line rewritten in place on a terminal, plain lines
otherwise."""

from __future__ import annotations

import io

from clipmix.cli import Progress
from clipmix.types import Job


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _job(status: str, progress: float) -> Job:
    return Job(
        id="job_1", service="music", status=status, test=True, created_at="", progress=progress
    )


def test_a_terminal_gets_one_line_rewritten_in_place() -> None:
    out = _Terminal()
    progress = Progress(out)
    for status, done in (("queued", 0.0), ("processing", 0.5), ("completed", 1.0)):
        progress.update(_job(status, done))
    progress.done()
    text = out.getvalue()
    assert text.count("\r\x1b[K") == 3 and text.count("\n") == 1 and text.endswith("\n")
    assert "processing  50%" in text and "completed  100%" in text


def test_a_pipe_gets_a_plain_line_per_change() -> None:
    out = io.StringIO()
    progress = Progress(out)
    for status, done in (("processing", 0.5), ("processing", 0.5), ("completed", 1.0)):
        progress.update(_job(status, done))
    progress.done()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue()
    assert "processing" in lines[0] and "completed" in lines[1]


def test_the_queue_position_and_each_delivered_language_show() -> None:
    from clipmix.types import Artifact, JobStreamEvent, LanguageCompletedData

    out = io.StringIO()
    progress = Progress(out)
    progress.update(_job("queued", 0.0))
    progress.event(JobStreamEvent(type="queue_position", id=0, queue_position=3))
    dub = Artifact(url="https://cdn/es.mp4")
    language = LanguageCompletedData(language="es", output=dub, completed_at="")
    progress.event(JobStreamEvent(type="job.language_completed", id=1, language=language))
    progress.update(_job("processing", 0.5))
    lines = out.getvalue().splitlines()
    assert "queue position 3" in lines[1]
    assert lines[2] == "  es delivered: https://cdn/es.mp4"
    assert "processing" in lines[3] and "queue position" not in lines[3]
