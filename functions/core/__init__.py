"""The code the Lambda consumers share, in four layers whose dependencies point inward:

- `domain/`: what the data is (S3 events, object formats and their readers, rejection reasons, datasets,
  records as DynamoDB items, rejects reports, object state); imports nothing else of `functions`;
- `use_cases/`: what an event does to the table (ingest, delete-sync, the write path that mirrors one
  version, the object lease, key resolution) through the ports in `use_cases/ports.py`;
- `adapters/`: the ports on AWS (DynamoDB record store, S3 object reader, S3 report sink); import the
  domain only;
- `wiring/`: the Lambda side (environment variable names, settings, clients, observability, the one
  handler shape); imports all of the above.
"""
