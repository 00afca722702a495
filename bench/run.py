"""Run every benchmark once and print its figures (`make bench`). Results: bench/RESULTS.md."""

from __future__ import annotations

from bench import (
    archive_scale,
    cold_start,
    dashboard_render,
    dashboard_speed,
    e2e_local,
    enrich_throughput,
    metrics_scale,
    moto_sqs_depth,
    reports_run,
    slowloris,
    stats_api,
    tracker_size,
)


def main() -> None:
    print(
        "## consumer CPU, realistic input, boto3 client counted", enrich_throughput.run(), sep="\n"
    )
    print("## end-to-end local", e2e_local.run(), sep="\n")
    print("## cold start of the embedded default", cold_start.run(), sep="\n")
    print("## moto SQS receive vs depth (ms)", moto_sqs_depth.run(), sep="\n")
    print("## tracking script size", tracker_size.run(), sep="\n")
    print("## metrics on 1,000,000 events", metrics_scale.run(), sep="\n")
    print("## overview page render (AppTest)", dashboard_render.run(), sep="\n")
    print("## collector under 2,000 slow connections", slowloris.run(), sep="\n")
    print("## Stats API 30d aggregate", stats_api.run(runs=20), sep="\n")
    print("## e-mail reports in the compactor (issue 17)", reports_run.run(runs=20), sep="\n")
    print("## dashboard speed in Chromium (one run)", dashboard_speed.run(runs=1), sep="\n")
    print("## filtered 30-day view, Parquet vs DynamoDB (issue 16)", flush=True)
    archive_scale.main(["1000000", "--dynamodb-events", "20000", "--runs", "1"])


if __name__ == "__main__":
    main()
