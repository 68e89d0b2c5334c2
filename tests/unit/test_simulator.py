"""The simulator's media files, webhook signatures (as the jobs service verifies them) and
run-time configuration."""

from __future__ import annotations

import io
import wave

import pytest

from services.jobs.adapters.artifacts import LocalArtifactStore
from services.jobs.config import DEV_WEBHOOK_SECRET
from services.jobs.entrypoints.http import verify_signature, webhook_key
from services.simulator.app import _sign
from services.simulator.media import mp4, mp4_duration, wav
from services.simulator.state import Config


@pytest.mark.parametrize("seconds", [0.5, 4, 61.25, 3600])
def test_mp4_carries_its_duration_in_mvhd(seconds: float) -> None:
    data = mp4(seconds)
    assert data[4:8] == b"ftyp"
    assert mp4_duration(data) == seconds


def test_wav_is_playable_and_as_long_as_asked() -> None:
    with wave.open(io.BytesIO(wav(3))) as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (1, 8000, 24000)


def _signed(body: bytes, stamp: int) -> dict[str, str]:
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": _sign(DEV_WEBHOOK_SECRET, "msg_1", str(stamp), body),
    }


def test_simulator_webhooks_verify_with_the_shared_secret() -> None:
    key = webhook_key(DEV_WEBHOOK_SECRET)
    body = b'{"id":"p1","status":"succeeded"}'
    assert verify_signature(key, _signed(body, 1000), body, now=1000)
    assert not verify_signature(key, _signed(body, 1000), body + b" ", now=1000)
    assert not verify_signature(key, _signed(body, 1000), body, now=1000 + 301)  # a replay
    assert not verify_signature(webhook_key("whsec_b3RoZXI="), _signed(body, 1000), body, 1000)
    assert not verify_signature(key, {}, body, now=1000)


def test_artifact_links_are_signed_and_expire(tmp_path: object) -> None:
    store = LocalArtifactStore(str(tmp_path), "http://jobs", "secret", ttl_seconds=60)
    link = store.link("job_1", "music.wav", now=1000)
    query = link["url"].split("?")[1]
    params = dict(p.split("=") for p in query.split("&"))
    assert link["expires_at"] == "1970-01-01T00:17:40.000Z"
    path = "/artifacts/job_1/music.wav"
    assert store.verify(path, params["expires"], params["signature"], now=1059)
    assert not store.verify(path, params["expires"], params["signature"], now=1061)
    assert not store.verify(
        "/artifacts/job_2/music.wav", params["expires"], params["signature"], now=1000
    )
    assert store.locate("..", "x") is None and store.locate("job_1", "../../etc") is None


def test_config_refuses_unknown_settings_and_kinds() -> None:
    config = Config()
    config.update({"latency_seconds": 0, "failure_kinds": ["stuck"]})
    assert (config.latency_seconds, config.failure_kinds) == (0.0, ["stuck"])
    with pytest.raises(ValueError, match="subset"):
        config.update({"failure_kinds": ["meteor"]})
    with pytest.raises(ValueError, match="unknown"):
        config.update({"colour": "red"})


def test_the_dev_defaults_of_simulator_and_jobs_service_match() -> None:
    """`make up` works with no configuration: same provider key, same webhook secret."""
    from services.jobs.config import DEV_PROVIDER_KEY
    from services.simulator.app import SimulatorSettings

    sim = SimulatorSettings()
    assert (sim.api_key, sim.webhook_secret) == (DEV_PROVIDER_KEY, DEV_WEBHOOK_SECRET)
