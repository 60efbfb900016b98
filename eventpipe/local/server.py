"""The emulator process: `python -m eventpipe.local.server --state-dir DIR [--port N] [--stage S]`.

One process holds moto's server, the event engine and the Lambda runtime, so the patches in
`moto_patches` can reach moto's in-process backends. It deploys the stack, writes the state file (the
readiness signal `Emulator.start` waits for) and serves until SIGTERM/SIGINT. A small control endpoint on its
own port answers `GET /idle` and `GET /status` (used by `Emulator.wait_idle`).

Both endpoints answer only requests signed with the credentials generated for this run (auth.py),
which the starter passes in this process's environment; the emulator sends no CORS headers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
from botocore.config import Config

from eventpipe.contract.errors import EventpipeError
from eventpipe.contract.local_state import EVENTS_LOG, LOGS_DIR
from eventpipe.contract.paths import PROJECT_ROOT
from eventpipe.local import moto_patches
from eventpipe.local.auth import LocalCredentials, SignedRequestsOnly, refuse, verify_sigv4
from eventpipe.local.clock import LocalClock
from eventpipe.local.deploy import deploy, ensure_template
from eventpipe.local.engine import EventEngine, Timing
from eventpipe.local.event_log import EventLog
from eventpipe.local.senders import AwsSenders
from eventpipe.local.state import (
    INSTANCE_ENV,
    prepare_state_dir,
    process_identity,
    remove_state,
    write_state,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
log = logging.getLogger("eventpipe.local.server")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eventpipe.local.server")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--template", type=Path, default=None)
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    args = parser.parse_args(argv)
    os.umask(0o077)  # everything this process creates (logs, state) is private to the user
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per AWS call
    credentials = LocalCredentials.from_environment(os.environ)
    instance = os.environ.get(INSTANCE_ENV, "")
    if credentials is None or not instance:
        log.error("started without this run's credentials; start local mode with `eventpipe local start`")
        return 1
    try:
        state_dir = prepare_state_dir(args.state_dir)
    except EventpipeError as exc:
        log.error("%s", exc)
        return 1
    # moto's server and boto3 in this process talk to the emulator itself, never to AWS.
    os.environ.update(
        {
            **credentials.aws_environment(),
            "AWS_DEFAULT_REGION": REGION,
            "MOTO_ALLOW_NONEXISTENT_REGION": "false",
            "MOTO_DISABLE_GLOBAL_CORS": "true",  # read by moto.settings at import (not imported yet)
        }
    )
    for variable in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(variable, None)  # a developer's real AWS settings must not leak in

    started = time.monotonic()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid, stop), daemon=True).start()
    try:
        _ensure_port_free(args.port)
        emulator = RunningEmulator(state_dir=state_dir, port=args.port, credentials=credentials)
    except PortUnavailableError as exc:
        log.error("%s", exc)  # the last log line: `Emulator.start` reports it as the reason
        return 1
    except Exception:
        log.exception("the emulator could not start")
        return 1
    try:
        template = args.template or ensure_template(args.stage)
        deployment = emulator.deploy(template, stack=f"eventpipe-{args.stage}")
        emulator.event_sources.refresh()  # the stack's event source mappings poll before "ready"
        write_state(
            state_dir,
            {
                "endpoint": emulator.endpoint,
                "control": emulator.control_endpoint,
                "pid": os.getpid(),
                "process": process_identity(os.getpid()),
                "instance": instance,
                "credentials": credentials.as_state(),
                "stack": deployment.stack,
                "stage": args.stage,
                "region": REGION,
                "account": ACCOUNT,
                "outputs": deployment.outputs,
                "template": str(template),
                "startup_seconds": round(time.monotonic() - started, 3),
                "deploy_seconds": round(deployment.seconds, 3),
            },
        )
        log.info(
            "ready: %s (stack %s deployed in %.2fs)", emulator.endpoint, deployment.stack, deployment.seconds
        )
        stop.wait()
    except Exception:
        log.exception("the emulator failed")
        return 1
    finally:
        remove_state(state_dir, pid=os.getpid())
        emulator.shutdown()
    return 0


class PortUnavailableError(Exception):
    """The requested port cannot be bound on 127.0.0.1."""


def _ensure_port_free(port: int) -> None:
    """Fail fast on a taken port: moto's server thread exits on a bind error without telling its
    starter, which would then wait forever for it to become ready."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the real server binds it
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortUnavailableError(
                f"port {port} on 127.0.0.1 is not available ({exc.strerror}); "
                "pick another with --port, or 0 for any free port"
            ) from None


def _watch_parent(parent_pid: int, stop: threading.Event) -> None:
    """A non-detached emulator must not outlive its owner (e.g. a killed test run)."""
    while not stop.wait(1.0):
        if os.getppid() != parent_pid:
            log.warning("parent process %s is gone; stopping", parent_pid)
            stop.set()


class RunningEmulator:
    def __init__(self, *, state_dir: Path, port: int, credentials: LocalCredentials) -> None:
        from eventpipe.local.lambda_runtime import LambdaRuntime, SqsEventSources

        self.credentials = credentials
        self.hooks = moto_patches.Hooks(account=ACCOUNT, region=REGION)
        moto_patches.install(self.hooks)
        self._moto = _SignedMotoServer(port=port, credentials=credentials)
        self.endpoint = self._moto.endpoint
        self.session = boto3.session.Session(region_name=REGION, **credentials.boto3_kwargs())
        # One clock for EventBridge backoff and Lambda's async retries: AWS seconds x scale.
        clock = LocalClock.from_environment()
        # One sender for rule targets and Lambda destinations.
        senders = AwsSenders(
            endpoint_url=self.endpoint,
            region=REGION,
            credentials=credentials,
            lambda_runtime=lambda: self.hooks.runtime,
        )
        self.runtime = LambdaRuntime(
            endpoint_url=self.endpoint,
            region=REGION,
            account=ACCOUNT,
            project_root=PROJECT_ROOT,
            log_dir=state_dir / LOGS_DIR,
            time_scale=clock.scale,
            max_workers_per_function=int(os.environ.get("EVENTPIPE_LOCAL_LAMBDA_CONCURRENCY", "0")) or None,
            config_generation=moto_patches.lambda_config_generation,
            credentials=credentials,
            senders=senders,
        )
        self.engine = EventEngine(
            topology=moto_patches.MotoTopology(ACCOUNT, REGION),
            senders=senders,
            timing=Timing(scale=clock.scale),
            event_log=EventLog(state_dir / EVENTS_LOG),
        )
        # Lambda's SQS pollers; the Lambda patch tells them when mappings change (H13).
        clients = {"retries": {"max_attempts": 2, "mode": "standard"}, "max_pool_connections": 32}
        self.event_sources = SqsEventSources(
            sqs=self.session.client("sqs", endpoint_url=self.endpoint, config=Config(**clients)),
            lambda_client=self.session.client("lambda", endpoint_url=self.endpoint, config=Config(**clients)),
            endpoint_url=self.endpoint,
            region=REGION,
            invoke=self.runtime.invoke_sync,
            clock=clock,
            concurrency_cap=self.runtime.max_concurrency_per_function,
        )
        self.hooks.engine, self.hooks.runtime = self.engine, self.runtime
        self.hooks.event_sources = self.event_sources
        self._control = ThreadingHTTPServer(("127.0.0.1", 0), _control_handler(self))
        self.control_endpoint = f"http://127.0.0.1:{self._control.server_address[1]}"
        threading.Thread(target=self._control.serve_forever, name="control", daemon=True).start()

    def deploy(self, template: Path, *, stack: str) -> Any:
        return deploy(
            template,
            stack=stack,
            session=self.session,
            endpoint_url=self.endpoint,
            region=REGION,
            account=ACCOUNT,
        )

    def idle(self, horizon: float) -> bool:
        return (
            not self.engine.busy(horizon) and not self.event_sources.busy(horizon) and not self.runtime.busy()
        )

    def status(self) -> dict[str, Any]:
        return {
            "pending_deliveries": self.engine.pending(),
            "lambda_busy": self.runtime.busy(),
            "stats": dict(self.engine.stats),
            "event_source_mappings": self.event_sources.status(),
        }

    def shutdown(self) -> None:
        for stop in (
            self.event_sources.shutdown,
            self.runtime.shutdown,
            self.engine.shutdown,
            self._control.shutdown,
            self._moto.stop,
        ):
            try:
                stop()
            except Exception:  # keep stopping the other parts
                log.exception("shutdown step failed")


class _SignedMotoServer:
    """moto's server app behind `SignedRequestsOnly`, on 127.0.0.1, in a thread (as ThreadedMotoServer
    runs it, which offers no way to wrap the app)."""

    def __init__(self, *, port: int, credentials: LocalCredentials) -> None:
        from moto.moto_server import werkzeug_app
        from werkzeug.serving import make_server

        # moto wraps every backend app in flask-cors (Access-Control-Allow-Origin: *) unless this is
        # set; it was read from MOTO_DISABLE_GLOBAL_CORS at import, this makes sure of it.
        werkzeug_app.DISABLE_GLOBAL_CORS = True
        app = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
        self._server = make_server(
            "127.0.0.1",
            port,
            SignedRequestsOnly(app, credentials),
            threaded=True,
            request_handler=werkzeug_app.MotoRequestHandler,
        )
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


def _control_handler(emulator: RunningEmulator) -> type[BaseHTTPRequestHandler]:
    class ControlHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            refusal = verify_sigv4(
                method="GET",
                raw_path=self.path.split("?", 1)[0],
                query=self.path.split("?", 1)[1] if "?" in self.path else "",
                headers=dict(self.headers.items()),
                body=b"",
                credentials=emulator.credentials,
            )
            if refusal is not None:
                self._refuse(refusal)
                return
            url = urlparse(self.path)
            if url.path == "/idle":
                horizon = float(parse_qs(url.query).get("horizon", ["2"])[0])
                self._reply({"idle": emulator.idle(horizon)})
            elif url.path == "/status":
                self._reply(emulator.status())
            else:
                self.send_error(404)

        def _refuse(self, refusal: Any) -> None:
            status: list[Any] = []
            chunks = refuse(refusal, dict(self.headers.items()), lambda *args: status.extend(args))
            self.send_response(int(str(status[0]).split()[0]))
            for name, value in status[1]:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(b"".join(chunks))

        def _reply(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return ControlHandler


if __name__ == "__main__":
    raise SystemExit(main())
