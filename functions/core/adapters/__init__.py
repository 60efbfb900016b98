"""The use cases' ports on AWS: DynamoDB record store, S3 object reader, S3 report sink."""
