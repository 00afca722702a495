"""Plausible's Stats API (v2 `POST /api/v2/query` and the legacy v1 endpoints), answered from
`pipeline.stats.metrics` and the daily rollups, so the API and the dashboard agree number for
number. `http` holds the transport-free request and response; the collector serves it locally
and a Lambda behind API Gateway on AWS.
"""
