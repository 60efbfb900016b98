"""Local mode: the whole stack offline on an embedded AWS (moto server + the project's own event
engine and Lambda runtime, in one process).

- `emulator`: the Python handle (start / attach / client / wait_idle / stop) used by tests, the CLI
  and `make demo`; `cli`: `eventpipe local start|stop|status`.
- `server`: the emulator process; `deploy`: the real synthesized template into its CloudFormation,
  after `template_adaptation`; `paths`: where the project is.
- `moto_patches`: moto's runtime patches, one module per service; `engine`, `target_input`: EventBridge
  delivery; `senders`: the one way targets and destinations are reached; `clock`: the one local clock
  and delayed-call scheduler; `s3_events`: AWS-shaped S3 events; `lambda_runtime`: functions' execution.
- `state`, `auth`: the private state directory and this run's credentials.
The catalogue of emulator adaptations is docs/local-mode.md.
"""
