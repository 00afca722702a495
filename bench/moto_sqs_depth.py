"""Why the demo's history skips SQS: moto's ReceiveMessage cost grows with queue depth.

Fills a queue on the embedded emulator to several depths and times ReceiveMessage there.
Run: `python -m bench.moto_sqs_depth`.
"""

from __future__ import annotations

import time

from pipeline import aws
from pipeline.config import Settings
from pipeline.local.emulator import EmbeddedAWS

RECEIVES = 20


def run(depths: tuple[int, ...] = (10, 500, 2000)) -> dict[int, float]:
    results = {}
    with EmbeddedAWS() as emulator:
        sqs = aws.client("sqs", Settings(endpoint_url=emulator.endpoint_url))
        for depth in depths:
            url = sqs.create_queue(
                QueueName=f"depth-{depth}", Attributes={"VisibilityTimeout": "0"}
            )["QueueUrl"]
            for start in range(0, depth, 10):
                entries = [
                    {"Id": str(i), "MessageBody": "x" * 600} for i in range(min(10, depth - start))
                ]
                sqs.send_message_batch(QueueUrl=url, Entries=entries)
            began = time.perf_counter()
            for _ in range(RECEIVES):
                sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            results[depth] = (time.perf_counter() - began) / RECEIVES * 1000
    return results


if __name__ == "__main__":
    for depth, ms in run().items():
        print(f"depth {depth:>6,}: {ms:7.1f} ms per ReceiveMessage")
