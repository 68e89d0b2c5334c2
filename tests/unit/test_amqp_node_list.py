"""CLIPMIX_AMQP_URL takes one RabbitMQ node or a cluster's nodes (issue 21): parsed, checked,
and never echoed (the URLs carry passwords)."""

from __future__ import annotations

import os
from unittest import mock

import pytest

from services.messaging import nodes
from services.runtime.config import InvalidSetting, ServiceSettings
from tests.infra import free_port

PASSWORD = "s3cret-pw"


def test_one_url_is_a_list_of_one() -> None:
    settings = ServiceSettings(amqp_url=f"amqp://u:{PASSWORD}@rabbit:5672/clipmix")
    assert settings.amqp_urls == (f"amqp://u:{PASSWORD}@rabbit:5672/clipmix",)


def test_a_comma_separated_list_is_the_cluster_in_the_order_given() -> None:
    value = f"amqp://u:{PASSWORD}@r1:5672/, amqps://u:{PASSWORD}@r2/ ,amqp://u:{PASSWORD}@r3:5673/"
    with mock.patch.dict(os.environ, {"CLIPMIX_AMQP_URL": value}):
        settings = ServiceSettings()
    assert settings.amqp_urls == (
        f"amqp://u:{PASSWORD}@r1:5672/",
        f"amqps://u:{PASSWORD}@r2/",
        f"amqp://u:{PASSWORD}@r3:5673/",
    )
    assert [nodes.node_of(url) for url in settings.amqp_urls] == ["r1:5672", "r2:5671", "r3:5673"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "node 1 of 1 is empty"),
        (f"amqp://u:{PASSWORD}@r1/,", "node 2 of 2 is empty"),
        (f"amqp://u:{PASSWORD}@r1/,,amqp://r2/", "node 2 of 3 is empty"),
        (f"http://u:{PASSWORD}@r1/", "node 1 of 1 is not an amqp://host or amqps://host URL"),
        (f"u:{PASSWORD}@r1:5672", "node 1 of 1 is not an amqp://host or amqps://host URL"),
        (f"amqp://r1/,amqp://u:{PASSWORD}@/", "node 2 of 2 is not an amqp://host or amqps://host"),
        (f"amqp://u:{PASSWORD}@r1:99999/", "node 1 of 1 is not a URL"),
        (f"amqp://r1:5672/,amqp://u:{PASSWORD}@r1/", r"node 2 of 2 \(r1:5672\) is listed twice"),
    ],
)
def test_a_bad_node_list_is_refused_naming_the_variable_and_the_node_never_the_url(
    value: str, reason: str
) -> None:
    with pytest.raises(InvalidSetting, match=f"^CLIPMIX_AMQP_URL: {reason}") as refused:
        ServiceSettings(amqp_url=value)
    assert PASSWORD not in str(refused.value)


async def test_no_node_answering_fails_naming_each_by_host_and_port_only() -> None:
    ports = [free_port(), free_port()]  # nothing listens there
    urls = [f"amqp://u:{PASSWORD}@127.0.0.1:{port}/" for port in ports]
    with pytest.raises(ConnectionError) as failed:
        await nodes.connect(urls, name="test-no-node", attempt_seconds=2, start=1)
    message = str(failed.value)
    assert message == (f"no RabbitMQ node answered: 127.0.0.1:{ports[0]}, 127.0.0.1:{ports[1]}")
    assert PASSWORD not in message


def test_a_connection_starts_at_the_node_asked_for() -> None:
    urls = [f"amqp://u:{PASSWORD}@r{i}:5672/" for i in range(3)]
    assert nodes.NodesConnection(urls, start=4).node == "r1:5672"  # round and round
    with pytest.raises(ValueError, match="no RabbitMQ node"):
        nodes.NodesConnection([])
