"""`python -m infra deploy|diff|outputs|destroy|cost`: the AWS stack in one command each."""

from __future__ import annotations

import argparse
import os
import sys

from infra.deploy import DeployError, Target, deploy, destroy, destroy_question, diff, outputs
from pipeline.config import env_settings
from pipeline.ops import cost
from pipeline.stack import settings_from_env

ENV_STACK = "PIPELINE_STACK"
DEFAULT_STACK = "analytics"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    parser.add_argument("command", choices=["deploy", "diff", "outputs", "destroy", "cost"])
    stack = os.environ.get(ENV_STACK, DEFAULT_STACK)
    parser.add_argument(
        "--stack", default=stack, help=f"stack name (${ENV_STACK}; {DEFAULT_STACK})"
    )
    parser.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION)")
    parser.add_argument("--endpoint-url", help="an emulator's endpoint (default: AWS_ENDPOINT_URL)")
    parser.add_argument(
        "--data-path-only",
        action="store_true",
        help="only queues, tables and the consumer (for emulators such as moto)",
    )
    parser.add_argument("--yes", action="store_true", help="destroy without asking")
    parser.add_argument("--events-per-month", type=int, default=1_000_000, help="for cost")
    parser.add_argument(
        "--api-requests-per-month",
        type=int,
        default=10_000,
        help="Stats API requests, for cost (default 10,000: a dashboard tool polling hourly)",
    )
    parser.add_argument(
        "--hot-days",
        type=int,
        default=env_settings().hot_days,
        help="days raw events stay in DynamoDB, for cost (default: $PIPELINE_HOT_DAYS or 7)",
    )
    parser.add_argument(
        "--filtered-views",
        type=int,
        default=cost.FILTERED_VIEWS,
        help=f"dashboard views with a filter a month, for cost (default {cost.FILTERED_VIEWS})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "cost":
        usage = {"api_requests": args.api_requests_per_month, "filtered_views": args.filtered_views}
        lines = cost.monthly_cost(args.events_per_month, hot_days=args.hot_days, **usage)
        print(cost.render(lines, args.events_per_month))
        print()
        rows = cost.comparison(hot_days=args.hot_days, **usage)
        print(cost.render_comparison(rows, args.hot_days))
        return 0
    settings = settings_from_env(
        resolve_stack=False, region=args.region, endpoint_url=args.endpoint_url
    )
    target = Target(stack=args.stack, settings=settings, edge=not args.data_path_only)
    try:
        if args.command == "deploy":
            found = deploy(target)
            print("\n".join(f"{key}: {value}" for key, value in sorted(found.items())))
            print(
                "\nOnly registered sites are counted: "
                f"PIPELINE_STACK={args.stack} python -m pipeline.sites add your-site.com"
            )
        elif args.command == "diff":
            changes = diff(target)
            print(
                "\n".join(changes)
                if changes
                else f"No changes: stack {args.stack!r} is up to date."
            )
        elif args.command == "outputs":
            print("\n".join(f"{key}: {value}" for key, value in sorted(outputs(target).items())))
        elif args.command == "destroy":
            if not args.yes and input(destroy_question(args.stack)).lower() != "y":
                print("Nothing removed.")
                return 1
            destroy(target)
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
