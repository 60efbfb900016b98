"""What the data is: events, formats, datasets, records, reports and object state (no I/O)."""
