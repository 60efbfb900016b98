"""Domain layer shared by the Lambda consumers: events, formats, datasets, records, storage, use cases."""
