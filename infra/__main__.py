"""`python -m infra deploy|diff|settings|alarms|outputs|destroy|cost`: the AWS stack in one
command each. `deploy` and `diff` take `--set Name=value` (repeatable) to change a setting."""

from __future__ import annotations

import argparse
import os
import sys

from infra import alarms as stack_alarms
from infra import cost as cost_cli
from infra import settings as stack_settings
from infra.deploy import (
    DeployError,
    Target,
    deploy,
    deployed_settings,
    destroy,
    destroy_question,
    diff,
    outputs,
)
from pipeline.errors import PipelineError
from pipeline.stack import settings_from_env

ENV_STACK = "PIPELINE_STACK"
DEFAULT_STACK = "analytics"
COMMANDS = ["deploy", "diff", "settings", "alarms", "outputs", "destroy", "cost"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    parser.add_argument("command", choices=COMMANDS)
    stack = os.environ.get(ENV_STACK, DEFAULT_STACK)
    parser.add_argument(
        "--stack", default=stack, help=f"stack name (${ENV_STACK}; {DEFAULT_STACK})"
    )
    parser.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION)")
    parser.add_argument("--endpoint-url", help="an emulator's endpoint (default: AWS_ENDPOINT_URL)")
    parser.add_argument(
        "--data-path-only",
        action="store_true",
        help="only queues, tables, the functions and the alarm topic (for emulators such as moto)",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="deploy/diff: change one setting (repeatable), e.g. --set RetentionDays=90; "
        f"settings: {', '.join(stack_settings.settable())} (docs/deploy.md)",
    )
    parser.add_argument("--yes", action="store_true", help="destroy without asking")
    cost_cli.add_arguments(parser)
    return parser.parse_args(argv)


def _alarm_email_note(stack: str, values: dict[str, str]) -> str:
    """What deploy says about alarm e-mails: where they go and the confirmation step."""
    email = values.get("AlarmEmail", "")
    if not email:
        return "Alarms reach nobody yet: python -m infra deploy --set AlarmEmail=you@example.com"
    return (
        f'Alarms e-mail {email} once confirmed: AWS sends it a "Subscription Confirmation" '
        "e-mail (from AWS Notifications), and nothing is delivered until the link in it is "
        f"clicked. `PIPELINE_STACK={stack} python -m infra alarms` shows whether it is pending."
    )


def _run(args: argparse.Namespace, target: Target, sets: dict[str, str]) -> int:
    if args.command == "deploy":
        found = deploy(target, sets=sets)
        print("\n".join(f"{key}: {value}" for key, value in sorted(found.items())))
        print()
        print(_alarm_email_note(args.stack, deployed_settings(target)))
        print(
            "Only registered sites are counted: "
            f"PIPELINE_STACK={args.stack} python -m pipeline.sites add your-site.com"
        )
    elif args.command == "diff":
        changes = diff(target, sets=sets)
        print("\n".join(changes) if changes else f"No changes: stack {args.stack!r} is up to date.")
    elif args.command == "settings":
        print(stack_settings.render(deployed_settings(target)))
    elif args.command == "alarms":
        print(stack_alarms.render(stack_alarms.read(target)))
    elif args.command == "outputs":
        print("\n".join(f"{key}: {value}" for key, value in sorted(outputs(target).items())))
    elif args.command == "destroy":
        if not args.yes and input(destroy_question(args.stack)).lower() != "y":
            print("Nothing removed.")
            return 1
        destroy(target)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "cost":
        return cost_cli.command(args)
    try:
        if args.sets and args.command not in {"deploy", "diff"}:
            raise stack_settings.SettingError(
                f"--set is for deploy and diff, not {args.command}: "
                f"python -m infra deploy --set {args.sets[0]}"
            )
        # Every --set is checked before AWS is asked anything: a bad one changes nothing.
        sets = stack_settings.parse_sets(args.sets)
        settings = settings_from_env(
            resolve_stack=False, region=args.region, endpoint_url=args.endpoint_url
        )
        target = Target(stack=args.stack, settings=settings, edge=not args.data_path_only)
        return _run(args, target, sets)
    except (DeployError, PipelineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
