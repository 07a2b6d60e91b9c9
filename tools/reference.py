"""Writes the reference pages of the docs site from the code: every command and option, every
log event with its fields, every metric with its labels, the exit codes, the SQL schema and
the environment variables. Nothing on those pages is written by hand.

    python tools/reference.py            # rewrite docs/reference/*.md
    python tools/reference.py --check    # exit 1 if a page differs from what the code says

`tests/unit/test_docs.py` runs the check, so a new option, event or metric fails the tests
until its page is rewritten.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingestd.commands.arguments import EXIT_CODES  # noqa: E402
from ingestd.commands.cli import COMMANDS, build_parser  # noqa: E402
from ingestd.runtime.settings import OPTIONS  # noqa: E402

OUT = ROOT / "docs" / "reference"
HEADER = "<!-- Written by tools/reference.py from the code: edit the code, then run it. -->\n\n"
LOG_METHODS = {"debug", "info", "warning", "error", "exception"}


def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def commands_page() -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = [
        "# Commands and options\n",
        "`python -m ingestd DIR` is `ingestd run DIR`. Every option of `run` can also be "
        "given as an environment variable (below); a flag on the command line wins.\n",
    ]
    for name in COMMANDS:
        command = sub.choices[name]
        helps = {a.dest: a.help for a in sub._choices_actions}
        out.append(f"## `ingestd {name}`\n\n{cell(helps.get(name, ''))}\n")
        usage = command.format_usage().replace("usage: ", "").strip()
        out.append(f"```\n{usage}\n```\n")
        rows = []
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flags = ", ".join(action.option_strings) or (action.metavar or action.dest)
            if action.metavar and action.option_strings:
                flags += f" {action.metavar}"
            default = "" if action.default in (None, False, argparse.SUPPRESS) else action.default
            text = (action.help or "").replace("%%", "%")  # as argparse prints it
            rows.append(f"| `{cell(flags)}` | {cell(default)} | {cell(text)} |")
        if rows:
            out.append("| argument | default | meaning |\n| --- | --- | --- |")
            out.append("\n".join(rows) + "\n")
    out.append("## Options of `run` and their environment variables\n")
    out.append("| option | variable | default | meaning |\n| --- | --- | --- | --- |")
    for option in OPTIONS:
        flag = option.cli + ("" if option.flag else f" {option.metavar}")
        if option.flag:
            flag += f" / --no-{option.cli[2:]}"
        default = "" if option.default in (None, False) else option.default
        choices = f" ({', '.join(option.choices)})" if option.choices else ""
        out.append(
            f"| `{flag}` | `{option.env}` | {cell(default)} | {cell(option.help)}{cell(choices)} |"
        )
    return HEADER + "\n".join(out) + "\n"


def _logged(tree: ast.AST) -> list[tuple[str, str, list[str]]]:
    """(event, level, fields) of every log call in one module."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func, args = node.func, node.args
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "stalled" and len(args) >= 2:
            level, args = "warning", args[1:]  # stalled(log, "event", ...): once per streak
        elif name in LOG_METHODS and isinstance(func, ast.Attribute):
            level = name
        else:
            continue
        if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
            event = args[0].value
            if re.fullmatch(r"[a-z_]+", event):
                fields = [k.arg for k in node.keywords if k.arg and k.arg != "exc_info"]
                found.append((event, level, fields))
    return found


def events_page() -> str:
    levels: dict[str, set[str]] = defaultdict(set)
    fields: dict[str, set[str]] = defaultdict(set)
    where: dict[str, set[str]] = defaultdict(set)
    for path in sorted((ROOT / "ingestd").rglob("*.py")):
        module = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        for event, level, keys in _logged(ast.parse(path.read_text())):
            levels[event].add(level)
            fields[event].update(keys)
            where[event].add(module)
    out = [
        "# Log events\n",
        "Every event the code logs, with the level it is logged at, the fields it carries "
        "besides `timestamp`, `level`, `event` and the worker's `worker`, and the module "
        "that logs it. What each means, and when: [Monitoring](../guides/monitoring.md).\n",
        "| event | level | fields | logged by |\n| --- | --- | --- | --- |",
    ]
    for event in sorted(levels):
        keys = ", ".join(f"`{k}`" for k in sorted(fields[event])) or "-"
        out.append(
            f"| `{event}` | {', '.join(sorted(levels[event]))} | {keys} | "
            f"{', '.join(f'`{m}`' for m in sorted(where[event]))} |"
        )
    return HEADER + "\n".join(out) + "\n"


def metrics_page() -> str:
    from prometheus_client.parser import text_string_to_metric_families

    from ingestd.runtime.metrics import Fleet, WorkerMetrics, fleet_exposition

    worker = WorkerMetrics()
    fleet = fleet_exposition(
        Fleet({"done": 0, "redone": 0, "failed": 0}, 0, 0, 0, 0.0, 0.0, 0, 0, False)
    )
    out = [
        "# Metrics\n",
        "No metric carries a file name: names are unbounded, and a series per file would "
        "grow forever. Counters are exposed with the `_total` suffix.\n",
    ]
    for title, families in (
        ("A worker (`--metrics-listen`, `--metrics-textfile`)", worker.registry.collect()),
        (
            "The fleet (`ingestd status --prometheus`, the console's `/metrics`)",
            text_string_to_metric_families(fleet.decode()),
        ),
    ):
        out.append(f"## {title}\n\n| metric | type | labels | what |\n| --- | --- | --- | --- |")
        for family in families:
            labels = sorted({k for s in family.samples for k in s.labels if k != "le"})
            name = family.name + ("_total" if family.type == "counter" else "")
            out.append(
                f"| `{name}` | {family.type} | "
                f"{', '.join(f'`{k}`' for k in labels) or '-'} | {cell(family.documentation)} |"
            )
        out.append("")
    return HEADER + "\n".join(out) + "\n"


def exit_codes_page() -> str:
    out = ["# Exit codes\n", "| status | meaning |\n| --- | --- |"]
    out += [f"| {code} | {cell(text)} |" for code, text in sorted(EXIT_CODES.items())]
    return HEADER + "\n".join(out) + "\n"


def _pretty(statement: str) -> str:
    """One column per line in a CREATE TABLE; other statements as they are."""
    if not statement.startswith("CREATE TABLE"):
        return statement + ";"
    head, _, body = statement.partition("(")
    parts, depth, current = [], 0, ""
    for char in body[:-1]:
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        depth += (char == "(") - (char == ")")
        current += char
    parts.append(current.strip())
    return head + "(\n    " + ",\n    ".join(parts) + "\n);"


def schema_page() -> str:
    from ingestd.postgres import schema

    tables = "\n\n".join(_pretty(t.format(s="ingestd")) for t in schema._TABLES)
    out = [
        "# The PostgreSQL schema\n",
        f"What a `postgresql://` ledger and the `pg` handler keep, in the schema named by "
        f"`--pg-schema` (`ingestd` here), at schema version {schema.SCHEMA_VERSION}. A "
        "missing schema is made by the first worker; an older one is migrated by `ingestd "
        "migrate` alone (workers and the other operator commands refuse a schema of another "
        "version, naming it). The ledger's steps are server-side "
        "functions in the same schema (`claim`, `begin_attempt`, `commit`, ...), made by "
        "the same statements.\n",
        f"```sql\n{tables}\n```",
    ]
    return HEADER + "\n".join(out) + "\n"


def environment_page() -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    operator: dict[str, set[str]] = defaultdict(set)
    flags: dict[str, str] = {}
    others = [name for name in sub.choices if name != "run"]
    for name in others:
        for action in sub.choices[name]._actions:
            for variable in re.findall(r"\[env (INGESTD_[A-Z_]+)\]", action.help or ""):
                operator[variable].add(name)
                flags[variable] = "/".join(action.option_strings)
    out = [
        "# Environment variables\n",
        "`ingestd run` reads one variable per option; an empty one counts as unset, an "
        "unknown `INGESTD_*` one is warned about. Operator commands read only the few "
        "named below, so a bad worker variable never breaks `status`. `DATABASE_URL` and "
        "libpq's `PG*` variables reach PostgreSQL when no URL is given; boto3 reads the "
        "`AWS_*` ones (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials). `INGESTD_TEST_*` "
        "belong to the test suite.\n",
        "| variable | read by |\n| --- | --- |",
    ]
    rows = {option.env: f"`run` {option.cli}" for option in OPTIONS}
    for variable, users in operator.items():
        who = (
            "every operator command"
            if len(users) == len(others)
            else ", ".join(f"`{u}`" for u in sorted(users))
        )
        said = f"{who} {flags[variable]}"
        rows[variable] = f"{rows[variable]}; {said}" if variable in rows else said
    out += [f"| `{v}` | {cell(rows[v])} |" for v in sorted(rows)]
    return HEADER + "\n".join(out) + "\n"


PAGES = {
    "commands.md": commands_page,
    "events.md": events_page,
    "metrics.md": metrics_page,
    "exit-codes.md": exit_codes_page,
    "schema.md": schema_page,
    "environment.md": environment_page,
}


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in PAGES.items():
        text = make()
        path = OUT / name
        if path.exists() and path.read_text() == text:
            continue
        if check:
            stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date: {', '.join(stale)} (python tools/reference.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
