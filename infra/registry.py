"""The consumers this app deploys: the registry's entries (`consumers/*.json`, loaded by
`eventpipe.contract.consumers`), with the routing suffixes of the reader's own format table."""

from __future__ import annotations

from eventpipe.contract.consumers import Consumer, load_consumers
from functions.core.domain.formats import READABLE_SUFFIXES

CONSUMERS: tuple[Consumer, ...] = load_consumers(readable_suffixes=READABLE_SUFFIXES)
