"""`eventpipe object`, `eventpipe records` and `eventpipe reconcile`: see inside the table."""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated, Any

import typer
from rich.progress import Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eventpipe.ops import inspect, reconcile
from eventpipe.ops.cli_support import Shared, err, operator_command, out, print_json, show_error
from functions.core.domain.table_layout import NATURAL_KEY_SORT

Key = Annotated[str, typer.Argument(help="Object key in the ingest bucket, e.g. people/team.jsonl.")]
VersionId = Annotated[
    str | None,
    typer.Option("--version-id", metavar="ID", help="Also say whether the table mirrors this version."),
]
Prefix = Annotated[str, typer.Option("--prefix", metavar="PREFIX", help="Only keys starting with this.")]
Repair = Annotated[
    bool,
    typer.Option(
        "--repair",
        help="Re-mirror each drifted object through its lease and the pipeline's own write path.",
    ),
]


@operator_command
def object_(key: Key, shared: Shared, version_id: VersionId = None) -> None:
    """One object: its state (version, sequencer, status, lease, pending event, dirty), its record and
    reject counts, its rejects report and the last event that touched it.

    Examples:

      eventpipe object people/team.jsonl --local

      eventpipe object people/team.jsonl --stack eventpipe-prod --json
    """
    data = inspect.describe(shared.context(), key, version_id=version_id)
    if shared.as_json:
        print_json(data)
        return
    obj, state = data["object"], data["state"]
    out.print(f"[bold]s3://{data['bucket']}/{data['key']}[/bold] (dataset {data['dataset']})")
    if obj["exists"]:
        out.print(f"in bucket: version {obj['version_id'] or '-'}, etag {obj['etag']}, {obj['size']} bytes")
    else:
        out.print(f"in bucket: {'that version is' if version_id else 'absent'} not there")
    if state is None:
        out.print("state: [yellow]none[/yellow] (no event of this key was processed)")
    else:
        lease = state["lease"]
        rows = [
            ("status", state["status"] or "-"),
            ("version mirrored", f"{state['version_id'] or '-'} (etag {state['etag'] or '-'})"),
            ("sequencer", state["sequencer"] or "-"),
            (
                "lease",
                "free"
                if lease is None
                else f"{lease['holder']} until {lease['expires']}"
                + (" (expired)" if lease["expired"] else ""),
            ),
            ("pending newer event", state["pending_sequencer"] or "none"),
            ("dirty", "yes" if state["dirty"] else "no"),
        ]
        table = Table(show_header=False, box=None)
        for name, value in rows:
            table.add_row(name, value)
        out.print(table)
    if version_id:
        out.print(f"version {version_id} mirrored: {'yes' if data['version_mirrored'] else 'no'}")
    out.print(
        f"records: {data['records']}, rejected: {data['rejected']} "
        f"(key layout {state['layout'] if state else '-'}, partitions read: {data['partitions_read']})"
    )
    report = data["rejects_report"]
    if report and report["exists"]:
        entries = Table(title=f"rejects report {report['key']}")
        for column in ("position", "reason", "detail"):
            entries.add_column(column, overflow="fold")
        for entry in report["entries"]:
            entries.add_row(str(entry.get("position")), str(entry.get("reason")), str(entry.get("detail")))
        out.print(entries)
    last = data["last_event"]
    out.print(f"last event: {last['event_id']} at {last['committed_at']}" if last else "last event: none")


@operator_command
def records(key: Key, shared: Shared) -> None:
    """The object's records in order (position-keyed, then natural-key items); JSON Lines with --json.

    Position-keyed items are read from the partitions `<key>#00`..`<key>#63` their state item
    vouches for (and `<key>` itself for an object committed by key layout 1), merged in position order.

    Examples:

      eventpipe records people/team.jsonl --local

      eventpipe records people/team.jsonl --local --json
    """
    rows = inspect.records(shared.context(), key)
    if shared.as_json:
        for row in rows:
            typer.echo(json.dumps(row, default=str, ensure_ascii=False))
        return
    table = Table(title=key)
    for column in ("position", "item", "record"):
        table.add_column(column, overflow="fold")
    counts: Counter[str] = Counter()
    for row in rows:
        kind, item = _item_label(key, str(row["pk"]), str(row["sk"]))
        counts[kind] += 1
        table.add_row(str(row["position"]), item, json.dumps(row["data"], ensure_ascii=False))
    out.print(table)
    out.print(
        f"{sum(counts.values())} records: {counts['position'] + counts['legacy']} position-keyed "
        f"({counts['legacy']} of them under layout 1), {counts['natural']} natural-key",
        markup=False,
    )


def _item_label(key: str, pk: str, sk: str) -> tuple[str, str]:
    """What kind of item a record row is, and how the table shows its key: `#NN` (the layout-2 shard),
    `layout 1` (pk = the object key), or the natural key's partition."""
    if pk == key:
        return "legacy", "layout 1"
    if sk == NATURAL_KEY_SORT:
        return "natural", pk
    return "position", pk.removeprefix(key)


@operator_command
def reconcile_(shared: Shared, prefix: Prefix = "", repair: Repair = False) -> None:
    """Prove the table equals the bucket: report drift per object; exit 1 while drift remains.

    Drift: missing_state, not_mirrored, stale_version, stale_records, count_mismatch,
    records_for_absent_object, state_for_absent_object, dirty, lease_overdue, legacy_layout.

    Examples:

      eventpipe reconcile --local

      eventpipe reconcile --local --prefix people/ --repair

      eventpipe reconcile --stack eventpipe-prod --json
    """
    ctx = shared.context()
    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("reconcile: listing the bucket")

        def tick(phase: str, count: int) -> None:
            what = "objects in the bucket" if phase == "bucket" else "keys in the table"
            progress.update(task, description=f"reconcile: {count} {what} checked")

        result = reconcile.reconcile(ctx, prefix=prefix, repair=repair, on_progress=tick)
    if shared.as_json:
        print_json(result.as_json())
    else:
        _print_result(result)
    if result.drift_remaining:
        raise typer.Exit(show_error(f"{result.drift_remaining} objects still drift from the bucket", 1))


def _print_result(result: reconcile.Result) -> None:
    out.print(
        f"{result.objects_checked} objects in s3://{result.bucket}/{result.prefix}, "
        f"{result.table_keys_checked} keys in table {result.table}",
        markup=False,
    )
    if not result.reports:
        out.print("[green]no drift[/green]")
        return
    table = Table(title=f"{len(result.reports)} objects drifted")
    for column in ("key", "drift", "detail", "repair"):
        table.add_column(column, overflow="fold")
    for report in result.reports:
        repaired: Any = report.repaired or "-"
        if report.repaired is not None:
            repaired = f"{report.repaired}, " + ("fixed" if not report.remaining else "still drifts")
        table.add_row(
            report.key,
            ", ".join(d.kind for d in report.drifts),
            "; ".join(d.detail for d in report.drifts),
            repaired,
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("object")(object_)
    app.command("records")(records)
    app.command("reconcile")(reconcile_)
