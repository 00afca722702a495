"""Store: events in DynamoDB and back (keys and batched writes, queries, daily rollups and
the compactor that keeps them)."""
