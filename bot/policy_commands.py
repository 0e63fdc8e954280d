"""`approval-bot policy check FILE` and `approval-bot policy test FILE --tool … --args …`:
a routing file checked, and tried on a call, without a running bot."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import ValidationError

from bot.config import ConfigError
from bot.errors import Invalid
from bot.grants import describe_span
from bot.models import ApprovalRequest, Priority
from bot.policy import Route, Routing, load_routing, rule_label

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`policy check` and `policy test`."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate a routing file")
    check.add_argument("file")
    test = actions.add_parser("test", help="show what a routing file does with one call")
    test.add_argument("file")
    test.add_argument("--tool", required=True, help="the tool name")
    test.add_argument("--args", default="{}", help="the arguments, as a JSON object")
    test.add_argument("--requester", default=None, help='e.g. {"agent": "billing-bot"}')
    test.add_argument("--priority", default=None, help="low, normal, high or critical")
    test.add_argument("--channel", default=None, help="the channel the call asks for")


def run(args: argparse.Namespace) -> int:
    """Print what the command found; 0 when the file loads (and the call is accepted)."""
    routing = load_routing(args.file)
    if args.action == "check":
        print(f"{args.file}: ok, {_counted(routing)}")
        return 0
    try:
        request = ApprovalRequest.model_validate(_request(args))
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"not a call the bot would take: {_first_error(exc)}") from None
    try:
        route = routing.route(request)
    except Invalid as exc:
        print(f"refused (422): {exc.path}: {exc.message}")
        return 1
    for line in _explained(routing, request, route):
        print(line)
    return 0


def _request(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"toolName": args.tool, "args": _json(args.args, "--args")}
    if args.requester is not None:
        body["requester"] = _json(args.requester, "--requester")
    if args.priority is not None:
        body["priority"] = args.priority
    if args.channel is not None:
        body["channel"] = args.channel
    return body


def _json(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{option} is not JSON: {exc.msg} (column {exc.colno})") from None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
    return str(exc)


def _counted(routing: Routing) -> str:
    rules = routing.rules
    conditions = sum(1 for rule in rules if rule.when)
    deciding = sum(1 for rule in rules if rule.decision)
    return (
        f"{len(rules)} rule{'' if len(rules) == 1 else 's'}, {conditions} with `when`, "
        f"{deciding} deciding without a card"
    )


def _explained(routing: Routing, request: ApprovalRequest, route: Route) -> list[str]:
    index, _ = routing.match(request)
    lines = [f"skipped rule {s['rule']}: its `when` failed: {s['error']}" for s in route.skipped]
    if index is None:
        lines.append("no rule matches: the call's own values apply, within the bot's limits")
    else:
        rule = routing.rules[index]
        lines.append(f"rule {rule_label(rule, index)} matches (tools {', '.join(rule.tools)})")
    if route.decision is not None:
        verdict = "approved" if route.decision.approved else "rejected"
        card = "an FYI card without buttons" if route.decision.notify else "no card"
        lines.append(
            f"{verdict} at once by {route.decision.decided_by}: {route.decision.reason} ({card})"
        )
        return lines
    policy = route.policy
    who = ", ".join(policy.approvers) if policy.approvers else "anyone in the channel"
    lines.append(
        f"a card in {route.channel or 'the default channel (APPROVAL_CHANNEL)'}, priority "
        f"{route.priority.value if route.priority else 'normal'}; approvers: {who}; "
        f"{policy.required_approvals} approval{'' if policy.required_approvals == 1 else 's'} "
        "needed"
    )
    wait = f"after {route.timeout_seconds} s" if route.timeout_seconds else "never"
    lines.append(f"on timeout ({wait}): {route.on_timeout.value}")
    if policy.allow_standing is not None:
        critical = route.priority is Priority.CRITICAL
        lines.append(
            "standing approvals: none for a critical call"
            if critical
            else f"standing approvals: up to {describe_span(policy.allow_standing)}"
        )
    return lines
