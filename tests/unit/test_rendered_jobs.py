"""The poll's kept renderings (gateway/entrypoints/conditional.py): bounded in entries and in
body size, the newest put kept, the same version renders the same bytes."""

from __future__ import annotations

from services.gateway.entrypoints.conditional import Rendered, RenderedJobs, etag, render


def _rendered(version: int, size: int = 10) -> Rendered:
    return Rendered(version, b"x" * size, {"ETag": '"t"'})


def test_at_most_entries_are_kept_and_the_oldest_put_goes_first() -> None:
    jobs = RenderedJobs(entries=3)
    for n in range(3):
        jobs.put(f"job_{n}", _rendered(n))
    jobs.put("job_0", _rendered(7))  # put again: now the newest
    jobs.put("job_3", _rendered(3))
    assert len(jobs) == 3
    assert jobs.get("job_1") is None
    kept = jobs.get("job_0")
    assert kept is not None and kept.version == 7
    assert jobs.get("job_2") is not None and jobs.get("job_3") is not None


def test_a_body_over_the_bound_is_not_kept() -> None:
    jobs = RenderedJobs(entries=3, max_body=100)
    jobs.put("job_big", _rendered(1, size=101))
    jobs.put("job_small", _rendered(1, size=100))
    assert jobs.get("job_big") is None and jobs.get("job_small") is not None


def test_a_rendering_carries_its_etag_and_when_to_poll_again() -> None:
    job = {"id": "job_1", "status": "processing", "progress": 0.5}
    one, two = render(job, 4), render(dict(job), 4)
    assert one.body == two.body and one.headers == two.headers
    assert one.headers["ETag"] == etag(one.body)
    assert one.headers["Cache-Control"] == "private, max-age=1"
    assert render({**job, "progress": 0.6}, 5).headers["ETag"] != one.headers["ETag"]
