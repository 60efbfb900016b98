"""`python -m eventpipe.local.context_check STAGE OVERRIDES_JSON`: the stage config's verdict on `-c`
context overrides, run by `deploy.parse_context` in a process of its own like the synth, because the
operator CLI never imports infra (import contract "infra-ops-siblings"). Exit 0: accepted; exit 2 with
one line on stderr: an unknown setting or a value infra/config.py refuses."""

from __future__ import annotations

import json
import sys

from eventpipe.contract.errors import UsageError
from eventpipe.contract.paths import PROJECT_ROOT
from eventpipe.local.deploy import cdk_json_context


def main(argv: list[str] | None = None) -> int:
    stage, overrides_json = argv if argv is not None else sys.argv[1:]
    overrides: dict[str, str] = json.loads(overrides_json)
    from infra.config import VALIDATORS, ConfigError, load_config

    for key in overrides:
        if key.rsplit(".", 1)[-1] not in VALIDATORS:
            return _refuse(
                f"-c {key}: unknown key; local mode accepts eventpipe.{stage}.SETTING, SETTING one of "
                f"{', '.join(VALIDATORS)} (docs/configuration.md)"
            )
    try:
        # What the synth reads: cdk.json's context, the stage, then the command line's (as `cdk synth -c`).
        load_config({**cdk_json_context(PROJECT_ROOT), "stage": stage, **overrides}.get)
    except ConfigError as error:
        return _refuse(f"-c: {error}")
    return 0


def _refuse(message: str) -> int:
    print(message, file=sys.stderr)
    return UsageError.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
