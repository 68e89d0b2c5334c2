"""A real S3-protocol server for the tests: moto's server as a process of its own.

A process, not moto in-process (``mock_aws``, ``ThreadedMotoServer``): the jobs service talks
to it over TCP exactly as to AWS S3 or MinIO, and a test can pause it (SIGSTOP: the port still
accepts connections, nothing answers) and resume it (SIGCONT), as a stalled store would.

    async with running(log_dir) as s3:      # or the ``s3_server`` fixture (tests/conftest.py)
        s3.url, s3.bucket, s3.pid
        s3.pause(); s3.resume(); s3.stop()
        async with s3.client() as client: ...   # an aiobotocore S3 client for assertions
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from tests.infra import free_port

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client

# moto accepts any credentials; these are what the tests hand the jobs service.
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
REGION = "us-east-1"


class S3Server:
    """moto's S3 server on a port of its own, with one bucket."""

    def __init__(self, log_path: Path, bucket: str = "clipmix-artifacts") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def env(self, **extra: str) -> dict[str, str]:
        """The jobs service's settings for an S3 store in this server's bucket."""
        return {
            "CLIPMIX_JOBS_ARTIFACT_STORE": "s3",
            "CLIPMIX_JOBS_ARTIFACT_S3_ENDPOINT": self.url,
            "CLIPMIX_JOBS_ARTIFACT_S3_BUCKET": self.bucket,
            "CLIPMIX_JOBS_ARTIFACT_S3_REGION": REGION,
            "CLIPMIX_JOBS_ARTIFACT_S3_ACCESS_KEY": ACCESS_KEY,
            "CLIPMIX_JOBS_ARTIFACT_S3_SECRET_KEY": SECRET_KEY,
            **extra,
        }

    def launch(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    async def start(self, timeout: float = 20) -> None:
        """Start the process, wait until it answers, and create the bucket."""
        self.launch()
        assert self.proc is not None
        async with aiohttp.ClientSession() as http, asyncio.timeout(timeout):
            while True:
                assert self.proc.poll() is None, f"moto exited: {self.log_path.read_text()[-2000:]}"
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.url}/moto-api/") as answer:
                        if answer.status == 200:
                            break
                await asyncio.sleep(0.05)
        await self.create_bucket()

    def pause(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, nothing is answered."""
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.paused:
            self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @contextlib.asynccontextmanager
    async def client(self, timeout: float = 5.0) -> AsyncIterator[S3Client]:
        config = AioConfig(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
        )
        async with get_session().create_client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=config,
        ) as client:
            yield client

    async def create_bucket(self) -> None:
        async with self.client() as client:
            await client.create_bucket(Bucket=self.bucket)

    async def delete_bucket(self) -> None:
        """Empty the bucket (objects and unfinished uploads) and delete it."""
        async with self.client() as client:
            listed: dict[str, Any] = dict(await client.list_objects_v2(Bucket=self.bucket))
            for item in listed.get("Contents", []):
                await client.delete_object(Bucket=self.bucket, Key=item["Key"])
            uploads = await client.list_multipart_uploads(Bucket=self.bucket)
            for upload in uploads.get("Uploads", []):
                await client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            await client.delete_bucket(Bucket=self.bucket)


@contextlib.asynccontextmanager
async def running(log_dir: Path, bucket: str = "clipmix-artifacts") -> AsyncIterator[S3Server]:
    """A started server with ``bucket`` created; stopped (resumed first if paused) on exit."""
    server = S3Server(log_dir / "moto-s3.log", bucket)
    try:
        await server.start()
        yield server
    finally:
        server.stop()
