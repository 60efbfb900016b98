"""Who may talk to local mode: only callers holding the credentials generated for this run.

`eventpipe local start` generates a random access key id and secret (`LocalCredentials.generate`);
the emulator process receives them in its environment (never on its command line, which any local
user can read in /proc) and records them in its state file (0600, in a 0700 directory). Every request
to the AWS endpoint and to the control endpoint must carry an AWS Signature Version 4 made with that
secret: `verify_sigv4` recomputes the signature with botocore's own SigV4 implementation (the code
boto3 and the AWS CLI sign with) and compares it in constant time. Unsigned requests, requests signed
with other credentials, presigned URLs and CORS preflights are refused, and no response carries an
`Access-Control-Allow-*` header, so neither another local user nor a web page in the developer's
browser can drive the emulator or the developer's code through it.

What a signature covers: the method, path, query, the signed headers and the payload hash. For S3,
the payload hash is the `x-amz-content-sha256` header; when it is a hex digest the body is checked
against it, when it is `UNSIGNED-PAYLOAD` / `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (botocore's choice
for some uploads) the body is not covered, as on AWS (which then relies on TLS). Requests must be
signed within 15 minutes of the server's clock, as AWS requires ("Elements of an AWS API request
signature", AWS IAM user guide: a signature is valid for 15 minutes from X-Amz-Date).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY_ENV = "EVENTPIPE_LOCAL_ACCESS_KEY_ID"
SECRET_KEY_ENV = "EVENTPIPE_LOCAL_SECRET_ACCESS_KEY"  # noqa: S105 - the variable's name, not a secret
MAX_CLOCK_SKEW = timedelta(minutes=15)
_ALGORITHM = "AWS4-HMAC-SHA256"
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class LocalCredentials:
    """The access key id and secret of one local-mode run."""

    access_key_id: str
    secret_access_key: str

    @classmethod
    def generate(cls) -> LocalCredentials:
        # AKIA + 16 characters: the shape of a long-term AWS key id, so tools that check it accept it.
        key_id = "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
        return cls(access_key_id=key_id, secret_access_key=secrets.token_urlsafe(30))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> LocalCredentials | None:
        key_id, secret = environ.get(ACCESS_KEY_ENV, ""), environ.get(SECRET_KEY_ENV, "")
        return cls(key_id, secret) if key_id and secret else None

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> LocalCredentials | None:
        found = state.get("credentials")
        if not isinstance(found, Mapping):
            return None
        key_id, secret = found.get("access_key_id"), found.get("secret_access_key")
        if isinstance(key_id, str) and isinstance(secret, str) and key_id and secret:
            return cls(key_id, secret)
        return None

    def environment(self) -> dict[str, str]:
        """How the emulator process receives them (see the module docstring)."""
        return {ACCESS_KEY_ENV: self.access_key_id, SECRET_KEY_ENV: self.secret_access_key}

    def as_state(self) -> dict[str, str]:
        return {"access_key_id": self.access_key_id, "secret_access_key": self.secret_access_key}

    def boto3_kwargs(self) -> dict[str, str]:
        """Keyword arguments for boto3.Session / boto3.client."""
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}

    def aws_environment(self) -> dict[str, str]:
        """The standard AWS variables (the printed `export` line, Lambda workers)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}

    def __repr__(self) -> str:  # never print the secret in a traceback or a log line
        return f"LocalCredentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: an AWS error code and a message."""

    code: str
    message: str


def verify_sigv4(
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: LocalCredentials,
    now: datetime | None = None,
) -> Refusal | None:
    """None when the request is signed with `credentials`; else the reason it is refused.

    `raw_path` and `query` are exactly as received (still percent-encoded); `headers` keys are
    case-insensitive (they are lower-cased here)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    authorization = lowered.get("authorization", "")
    if not authorization:
        if "x-amz-signature=" in query.lower() or "signature=" in query.lower():
            return Refusal("AccessDenied", "Presigned requests are not accepted by local mode.")
        return Refusal("MissingAuthenticationToken", "Request is missing an AWS Signature Version 4.")
    match = _AUTHORIZATION.match(authorization.strip())
    if match is None:
        return Refusal("IncompleteSignature", f"Only {_ALGORITHM} Authorization headers are accepted.")
    scope = match["credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return Refusal("IncompleteSignature", "Malformed credential scope.")
    key_id, day, region, service, _ = scope
    if not hmac.compare_digest(key_id.encode(), credentials.access_key_id.encode()):
        return Refusal(
            "InvalidClientTokenId",
            "The security token included in the request is invalid "
            "(local mode accepts only the credentials printed by `eventpipe local start`).",
        )
    stamp = lowered.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return Refusal("IncompleteSignature", "X-Amz-Date is missing or malformed.")
    if stamp[:8] != day:
        return Refusal("SignatureDoesNotMatch", "Credential scope date does not match X-Amz-Date.")
    if abs((now or datetime.now(UTC)) - signed_at) > MAX_CLOCK_SKEW:
        return Refusal("RequestTimeTooSkewed", "The request was signed more than 15 minutes ago or ahead.")
    signed_names = match["signed"].split(";")
    if "host" not in signed_names:
        return Refusal("SignatureDoesNotMatch", "The Host header must be signed.")
    missing = [name for name in signed_names if name not in lowered]
    if missing:
        return Refusal("SignatureDoesNotMatch", f"Signed header(s) missing: {', '.join(missing)}.")
    content_hash = lowered.get("x-amz-content-sha256")
    hashed = bool(content_hash and _HEX_SHA256.fullmatch(content_hash)) and not _is_aws_chunked(lowered)
    if hashed and not hmac.compare_digest(str(content_hash), hashlib.sha256(body).hexdigest()):
        return Refusal("XAmzContentSHA256Mismatch", "The body does not match x-amz-content-sha256.")
    expected = _signature(
        method=method,
        url=f"http://{lowered['host']}{raw_path}" + (f"?{query}" if query else ""),
        headers={name: lowered[name] for name in signed_names},
        body=body,
        credentials=credentials,
        region=region,
        service=service,
        stamp=stamp,
    )
    if not hmac.compare_digest(expected, match["signature"]):
        return Refusal(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    return None


def _is_aws_chunked(headers: Mapping[str, str]) -> bool:
    return "aws-chunked" in headers.get("content-encoding", "")


def _signature(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: LocalCredentials,
    region: str,
    service: str,
    stamp: str,
) -> str:
    """The signature botocore computes for this request (S3 signs its path without normalizing it)."""
    signer_class = S3SigV4Auth if service == "s3" else SigV4Auth
    signer = signer_class(
        Credentials(credentials.access_key_id, credentials.secret_access_key), service, region
    )
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    request.context["timestamp"] = stamp
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def sign_headers(
    *, method: str, url: str, credentials: LocalCredentials, body: bytes = b"", region: str = "us-east-1"
) -> dict[str, str]:
    """SigV4 headers for a plain HTTP request to the control endpoint (service name `eventpipe-local`:
    the verifier reads the service from the credential scope)."""
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(
        Credentials(credentials.access_key_id, credentials.secret_access_key), "eventpipe-local", region
    ).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


# --- WSGI ----------------------------------------------------------------------------------------

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_JSON_SERVICES = frozenset(
    {"lambda", "events", "dynamodb", "sqs", "states", "logs", "kms", "eventpipe-local", "cloudwatch"}
)


class SignedRequestsOnly:
    """WSGI middleware: passes on only requests signed with `credentials`; strips CORS headers."""

    def __init__(self, app: WsgiApp, credentials: LocalCredentials) -> None:
        self._app = app
        self._credentials = credentials

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        headers = _headers(environ)
        body = _read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads the body again
        environ["CONTENT_LENGTH"] = str(len(body))
        refusal = verify_sigv4(
            method=environ.get("REQUEST_METHOD", "GET"),
            raw_path=_raw_path(environ),
            query=environ.get("QUERY_STRING", ""),
            headers=headers,
            body=body,
            credentials=self._credentials,
        )
        if refusal is not None:
            return refuse(refusal, headers, start_response)

        def without_cors(status: str, response_headers: list[tuple[str, str]], *args: Any) -> Any:
            kept = [(k, v) for k, v in response_headers if not k.lower().startswith("access-control-")]
            return start_response(status, kept, *args)

        return self._app(environ, without_cors)


def refuse(refusal: Refusal, headers: Mapping[str, str], start_response: StartResponse) -> list[bytes]:
    """A 403 in the shape the caller's protocol parses (JSON, S3 XML or query XML)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    service = _scope_service(lowered.get("authorization", ""))
    content_type = lowered.get("content-type", "")
    if "x-amz-target" in lowered or "json" in content_type or service in _JSON_SERVICES:
        body = json.dumps({"__type": refusal.code, "message": refusal.message}).encode()
        response_headers = [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-ErrorType", refusal.code),
        ]
    elif service == "s3" or not service:
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{refusal.code}</Code>"
            f"<Message>{_xml(refusal.message)}</Message></Error>"
        ).encode()
        response_headers = [("Content-Type", "application/xml")]
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{refusal.code}</Code>"
            f"<Message>{_xml(refusal.message)}</Message></Error></ErrorResponse>"
        ).encode()
        response_headers = [("Content-Type", "text/xml")]
    start_response("403 Forbidden", [*response_headers, ("Content-Length", str(len(body)))])
    return [body]


def _scope_service(authorization: str) -> str:
    match = _AUTHORIZATION.match(authorization.strip())
    parts = match["credential"].split("/") if match else []
    return parts[3] if len(parts) == 5 else ""


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _read_body(environ: Mapping[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        return bytes(stream.read(int(length))) if int(length) else b""
    if environ.get("wsgi.input_terminated"):  # chunked: the server already de-chunked it
        return bytes(stream.read())
    return b""


def _raw_path(environ: Mapping[str, Any]) -> str:
    """The path as the client sent it (percent-encoded), which is what the client signed."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw).split("?", 1)[0]
    path = str(environ.get("PATH_INFO", "/")).encode("latin-1").decode("utf-8", "replace")
    return quote(path, safe="/~!$&'()*+,;=:@%")


# moto's request handler keeps headers whose names hold underscores (S3 metadata), which WSGI would
# fold into dashes, under their original names here (moto.core.request.PRESERVED_HEADER_NAMES_ENVIRON_KEY).
_PRESERVED_NAMES = "moto.preserved_header_names"


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    original = environ.get(_PRESERVED_NAMES) or {}
    headers = {
        str(original.get(key, key[5:].replace("_", "-"))).lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers
