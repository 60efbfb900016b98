"""Local mode: the whole stack offline on an embedded AWS (moto server + the project's own event
engine and Lambda runtime, in one process).

- `emulator`: the Python handle (start / attach / client / wait_idle / stop) used by tests, the CLI
  and `make demo`; `cli`: `eventpipe local start|stop|status`.
- `server`: the emulator process; `deploy`: the real synthesized template into its CloudFormation.
- `quirks`: every moto adaptation, listed in its docstring; `engine`, `target_input`, `senders`:
  EventBridge delivery; `s3_events`: AWS-shaped S3 events; `lambda_runtime`: functions' execution.
"""
