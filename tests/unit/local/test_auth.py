"""SigV4 verification: a request passes only when signed with the run's secret (botocore signs here
exactly as boto3 and the AWS CLI do)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from eventpipe.local.auth import LocalCredentials, verify_sigv4

OURS = LocalCredentials.generate()


def _signed(
    credentials: LocalCredentials,
    *,
    service: str = "sqs",
    url: str = "http://127.0.0.1:4566/",
    body: bytes = b"{}",
) -> AWSRequest:
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/x-amz-json-1.0"}
    )
    signer = S3SigV4Auth if service == "s3" else SigV4Auth
    signer(
        Credentials(credentials.access_key_id, credentials.secret_access_key), service, "us-east-1"
    ).add_auth(request)
    return request


def _verify(
    request: AWSRequest, *, body: bytes | None = None, path: str | None = None, **kwargs: object
) -> str | None:
    parts = urlsplit(request.url)
    headers = {name: str(value) for name, value in request.headers.items()}
    headers.setdefault("Host", parts.netloc)
    refusal = verify_sigv4(
        method=request.method,
        raw_path=path if path is not None else parts.path,
        query=parts.query,
        headers=headers,
        body=(request.body or b"") if body is None else body,
        credentials=OURS,
        **kwargs,  # type: ignore[arg-type]
    )
    return refusal.code if refusal else None


def test_a_request_signed_with_the_run_credentials_passes() -> None:
    assert _verify(_signed(OURS)) is None


def test_an_s3_request_with_an_encoded_key_and_query_passes() -> None:
    url = "http://127.0.0.1:4566/bucket/incoming/a%20b%2Bc%C3%A9.csv?versionId=abc%2B1&x-id=GetObject"
    assert _verify(_signed(OURS, service="s3", url=url, body=b"")) is None


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ({"body": b'{"QueueName": "other"}'}, "SignatureDoesNotMatch"),
        ({"path": "/other"}, "SignatureDoesNotMatch"),
        ({"now": timedelta(minutes=16)}, "RequestTimeTooSkewed"),  # an offset from the signing time
    ],
)
def test_a_tampered_or_stale_request_is_refused(tamper: dict[str, object], code: str) -> None:
    if isinstance(tamper.get("now"), timedelta):
        tamper = {"now": datetime.now(UTC) + tamper["now"]}  # type: ignore[operator]
    assert _verify(_signed(OURS), **tamper) == code  # type: ignore[arg-type]


def test_a_changed_s3_body_does_not_match_its_signed_hash() -> None:
    request = _signed(OURS, service="s3", url="http://127.0.0.1:4566/bucket/key", body=b"original")
    assert _verify(request, body=b"replaced") == "XAmzContentSHA256Mismatch"


def test_other_credentials_and_a_wrong_secret_are_refused() -> None:
    assert _verify(_signed(LocalCredentials.generate())) == "InvalidClientTokenId"
    assert _verify(_signed(LocalCredentials(OURS.access_key_id, "not-the-secret"))) == "SignatureDoesNotMatch"


def test_an_unsigned_or_presigned_request_is_refused() -> None:
    unsigned = AWSRequest(method="GET", url="http://127.0.0.1:4566/", headers={"Host": "127.0.0.1:4566"})
    assert _verify(unsigned, body=b"") == "MissingAuthenticationToken"
    assert (
        verify_sigv4(
            method="GET",
            raw_path="/bucket/key",
            query="X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00",
            headers={"Host": "127.0.0.1:4566"},
            body=b"",
            credentials=OURS,
        ).code  # type: ignore[union-attr]
        == "AccessDenied"
    )


def test_the_secret_never_appears_in_a_repr() -> None:
    assert OURS.secret_access_key not in repr(OURS)
