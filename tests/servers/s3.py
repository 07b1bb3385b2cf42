"""S3 through moto's server mode: a real HTTP peer that honours If-None-Match and If-Match."""

from __future__ import annotations

import sys
import uuid
from typing import Iterator

import pytest

from servers._util import free_port, serving

SITES = ["s3"]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret-do-not-print", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with serving([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, log, "moto server") as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def s3_client(moto_endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("s3", endpoint_url=moto_endpoint, aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")


@pytest.fixture(scope="session")
def s3_bucket(s3_client) -> str:  # type: ignore[no-untyped-def]
    bucket = f"dlock-test-{uuid.uuid4().hex[:8]}"
    s3_client.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def site_s3(moto_endpoint: str, s3_client, s3_bucket: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from conftest import Site

    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": moto_endpoint}
    for key, value in env.items():  # the in-process API reaches the store the same way
        monkeypatch.setenv(key, value)

    def put(url: str, data: bytes) -> None:
        key = url.split("://", 1)[1].split("/", 1)[1]
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=data)

    def get(url: str) -> bytes | None:
        key = url.split("://", 1)[1].split("/", 1)[1]
        try:
            return s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        except s3_client.exceptions.NoSuchKey:
            return None

    return Site("s3", f"s3://{s3_bucket}", env, {}, put, get)
