"""Ops: what an operator runs to watch the pipeline (queue health, the dead-letter queue
tool, the cost model)."""
