"""Per-language results of translations without I/O: the settlement arithmetic (billing's
split of a reservation), a translation's languages as its job moves (jobs' domain), the public
object's ``languages`` (contracts), the simulator's per-language dubbing, and which consumers
receive ``job.language_completed``."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.domain.settlement import shares, split
from services.billing.entrypoints.events import HANDLERS as BILLING
from services.contracts.jobs import (
    ALL_JOB_EVENTS,
    JOB_LANGUAGE_COMPLETED,
    JobSnapshot,
    JobStatus,
    Service,
    job_object,
    languages_of,
)
from services.contracts.routing import QUEUES, WEBHOOKS_JOB_EVENTS
from services.gateway.entrypoints.events import BATCH_HANDLERS as GATEWAY
from services.jobs.domain import languages as langs
from services.jobs.domain.lifecycle import Job
from services.jobs.service_layer.dubs import ended_early, settled
from services.simulator.state import Task
from services.webhooks.domain.events import job_event_body
from services.webhooks.entrypoints.events import HANDLERS as WEBHOOKS
from tests.webhooks_support import catalog_problems

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LANGS = ["es", "de", "fr"]

# --- billing: the split of a reservation --------------------------------------------------------


def test_a_per_language_price_splits_exactly_and_only_delivered_languages_are_captured() -> None:
    # 1 started minute x 3 languages x 120 credits (translation.standard).
    assert shares(360, LANGS) == {"es": 120, "de": 120, "fr": 120}
    two = split(360, LANGS, ["es", "fr"])
    assert (two.capture, two.releases, two.released) == (240, (("de", 120),), 120)
    one = split(360, LANGS, ["de"])
    assert (one.capture, one.releases) == (120, (("es", 120), ("fr", 120)))


def test_a_price_that_does_not_divide_still_adds_up_to_the_reservation() -> None:
    assert shares(10, LANGS) == {"es": 4, "de": 3, "fr": 3}
    parts = split(10, LANGS, ["fr"])
    assert parts.capture + parts.released == 10 and parts.capture == 3


@given(
    amount=st.integers(min_value=1, max_value=10**9),
    languages=st.lists(st.sampled_from("abcdefghijklmnop"), min_size=1, max_size=10, unique=True),
    data=st.data(),
)
def test_capture_plus_releases_is_always_the_reservation(
    amount: int, languages: list[str], data: st.DataObject
) -> None:
    delivered = data.draw(st.lists(st.sampled_from(languages), unique=True))
    parts = split(amount, languages, delivered)
    assert parts.capture + parts.released == amount
    assert [lang for lang, _ in parts.releases] == [x for x in languages if x not in delivered]
    assert max(shares(amount, languages).values()) - min(shares(amount, languages).values()) <= 1


def test_a_split_refuses_languages_that_were_not_asked_for() -> None:
    with pytest.raises(ValueError, match="not asked for"):
        split(360, LANGS, ["ja"])
    with pytest.raises(ValueError):
        shares(360, [])


# --- jobs: a translation's languages as its job moves --------------------------------------------


def _translation(**changes: object) -> Job:
    fields: dict[str, object] = {
        "id": "job_1",
        "account_id": "acct_1",
        "api_key_id": "key_1",
        "service": Service.TRANSLATIONS,
        "status": JobStatus.QUEUED,
        "test": False,
        "input": {"target_languages": LANGS},
        "created_at": NOW,
        "languages": langs.start({"target_languages": LANGS}),
    }
    return Job(**{**fields, **changes})  # type: ignore[arg-type]


def test_languages_start_with_the_job_and_settle_one_by_one() -> None:
    job = _translation().transition(JobStatus.PROCESSING, NOW)
    assert job.languages is not None
    assert {e["status"] for e in job.languages} == {"processing"}
    dub = {"url": "https://x/es", "expires_at": "t", "content_type": "video/mp4", "bytes": 3}
    error = {"code": "provider_error", "message": "m"}
    children = langs.deliver(job.languages, "es", dub, NOW)
    children = langs.fail(children, "de", error, NOW)
    assert langs.outcome(children) is None and langs.pending(children) == ["fr"]
    moved = job.with_languages(children)
    assert moved.version == job.version + 1 and moved.status is JobStatus.PROCESSING
    assert 0.66 < moved.progress < 0.67
    # A settled language stays as it was.
    assert langs.fail(children, "es", error, NOW)[0]["status"] == "completed"
    children = langs.deliver(children, "fr", dub, NOW)
    assert langs.outcome(children) is JobStatus.COMPLETED
    assert [d["language"] for d in langs.dubs(children)] == ["es", "fr"]
    every_failed = [langs.fail([e], e["language"], error, NOW)[0] for e in job.languages]
    assert langs.outcome(every_failed) is JobStatus.FAILED
    assert langs.first_error(every_failed) == error


def test_a_job_that_settles_as_a_whole_takes_its_pending_languages_with_it() -> None:
    job = _translation().transition(JobStatus.PROCESSING, NOW)
    assert job.languages is not None
    error = {"code": "provider_timeout", "message": "m"}
    failed = job.transition(JobStatus.FAILED, NOW, error=error)
    assert [(e["status"], e["error"]) for e in failed.languages or []] == [("failed", error)] * 3
    canceled = job.transition(JobStatus.CANCELED, NOW)
    assert {e["status"] for e in canceled.languages or []} == {"canceled"}
    # A completed job's own dubs (sandbox, a provider that does not report languages).
    dubs = [{"language": "es", "url": "u"}, {"language": "fr", "url": "v"}]
    done = job.transition(JobStatus.COMPLETED, NOW, output={"dubs": dubs})
    assert [(e["language"], e["status"]) for e in done.languages or []] == [
        ("es", "completed"),
        ("de", "failed"),
        ("fr", "completed"),
    ]
    assert (done.languages or [])[0]["output"] == {"url": "u"}


def test_a_translation_past_its_deadline_keeps_what_it_delivered() -> None:
    job = _translation().transition(JobStatus.PROCESSING, NOW)
    assert job.languages is not None
    dub = {"url": "https://x/es", "expires_at": "t", "content_type": "video/mp4", "bytes": 3}
    moved = job.with_languages(langs.deliver(job.languages, "es", dub, NOW))
    timeout = {"code": "provider_timeout", "message": "m"}
    ended = ended_early(moved, JobStatus.FAILED, NOW, timeout)
    assert (ended.status, ended.error) == (JobStatus.COMPLETED, None)
    assert ended.output == {"dubs": [{"language": "es", **dub}]}
    assert [(e["language"], e["status"], e["error"]) for e in ended.languages or []] == [
        ("es", "completed", None),
        ("de", "failed", timeout),
        ("fr", "failed", timeout),
    ]
    # Nothing delivered yet: it fails, every language with the job's error.
    nothing = ended_early(job, JobStatus.FAILED, NOW, timeout)
    assert (nothing.status, nothing.error) == (JobStatus.FAILED, timeout)
    # Once every language has settled, the job settles as they say.
    error = {"code": "provider_error", "message": "m"}
    children = langs.fail(langs.fail(moved.languages or [], "de", error, NOW), "fr", error, NOW)
    done = settled(moved.with_languages(children), NOW)
    assert (done.status, [d["language"] for d in done.output["dubs"]]) == (  # type: ignore[index]
        JobStatus.COMPLETED,
        ["es"],
    )


# --- contracts: the public object ------------------------------------------------------------------


def _snapshot(**changes: object) -> JobSnapshot:
    fields: dict[str, object] = {
        "job_id": "job_1",
        "account_id": "acct_1",
        "api_key_id": "key_1",
        "service": Service.TRANSLATIONS,
        "status": JobStatus.PROCESSING,
        "test": False,
        "input": {"target_languages": ["es", "fr"]},
        "created_at": NOW,
        "version": 3,
    }
    return JobSnapshot.model_validate({**fields, **changes})


def test_the_public_object_shows_languages_for_translations_only() -> None:
    assert job_object(_snapshot(service=Service.MUSIC, input={}))["languages"] is None
    # Not reported yet (as the gateway accepted it): each language shares the job's status.
    shown = job_object(_snapshot())["languages"]
    assert shown == [
        {"language": lang, "status": "processing", "output": None, "error": None,
         "completed_at": None}
        for lang in ("es", "fr")
    ]  # fmt: skip
    # A job settled before per-language results: derived from its output.
    old = _snapshot(
        status=JobStatus.COMPLETED,
        completed_at=NOW,
        output={"dubs": [{"language": "es", "url": "u"}, {"language": "fr", "url": "v"}]},
    )
    assert [r.output for r in languages_of(old) or []] == [{"url": "u"}, {"url": "v"}]


def test_a_language_completed_body_is_the_one_the_catalog_describes() -> None:
    job = _translation().transition(JobStatus.PROCESSING, NOW)
    assert job.languages is not None
    dub = {"url": "https://x/es", "expires_at": "2026-12-06T13:00:00.000Z",
           "content_type": "video/mp4", "bytes": 3}  # fmt: skip
    moved = job.with_languages(langs.deliver(job.languages, "es", dub, NOW))
    snapshot = moved.snapshot().model_copy(update={"language": "es"})
    body = job_event_body("evt_1", JOB_LANGUAGE_COMPLETED, NOW, snapshot)
    assert catalog_problems(body) == []
    event = orjson.loads(body)
    assert event["data"] == {
        "language": "es",
        "output": dub,
        "completed_at": "2026-12-06T12:00:00.000Z",
    }
    assert [r["status"] for r in event["job"]["languages"]] == [
        "completed",
        "processing",
        "processing",
    ]
    settled = moved.transition(JobStatus.FAILED, NOW, error={"code": "c", "message": "m"})
    assert catalog_problems(job_event_body("evt_2", "job.failed", NOW, settled.snapshot())) == []


# --- messaging: who receives job.language_completed ------------------------------------------------


def test_only_queues_whose_consumer_handles_it_receive_job_language_completed() -> None:
    status = set(ALL_JOB_EVENTS)  # the status service's job handlers (built with its store)
    handlers = {"webhooks": WEBHOOKS, "gateway": GATEWAY, "billing": BILLING, "status": status}
    bound = {q.name for q in QUEUES if any(t == JOB_LANGUAGE_COMPLETED for _, t in q.bindings)}
    assert WEBHOOKS_JOB_EVENTS in bound
    for queue in bound:
        assert JOB_LANGUAGE_COMPLETED in handlers[queue.split(".")[0]], queue
    for spec in QUEUES:  # and every queue bound to a job event handles what it is bound to
        service = spec.name.split(".")[0]
        if service in handlers and spec.name.endswith("job-events"):
            assert {t for _, t in spec.bindings} <= set(handlers[service]), spec.name


# --- simulator: the dubbing's languages ---------------------------------------------------------


def _dubbing(outcome: str = "succeeded", failing: frozenset[str] = frozenset()) -> Task:
    return Task(
        id="dub1",
        api="dubbing",
        model="dubbing",
        input={"target_langs": ["es", "de", "fr"]},
        key="k",
        webhook=None,
        created_at=0.0,
        ready_at=3.0,
        outcome=outcome,
        failed_languages=failing,
    )


def test_the_simulators_dubbing_finishes_each_language_in_turn() -> None:
    task = _dubbing(failing=frozenset({"de"}))
    assert task.languages(0.5) == [("es", "processing"), ("de", "processing"), ("fr", "processing")]
    assert task.languages(1.5) == [("es", "succeeded"), ("de", "processing"), ("fr", "processing")]
    assert task.languages(3.0) == [("es", "succeeded"), ("de", "failed"), ("fr", "succeeded")]
    assert [s for _, s in _dubbing("failed").languages(2.5)] == ["processing"] * 3
    assert [s for _, s in _dubbing("failed").languages(3.0)] == ["failed"] * 3
    canceled = _dubbing()
    canceled.canceled = True
    assert [s for _, s in canceled.languages(5.0)] == ["canceled"] * 3
