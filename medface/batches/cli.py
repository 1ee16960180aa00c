"""``medface batch PLUGIN.COMMAND --inputs ... --out DIR [options] [--PARAM VALUE ...]``.

The batch options come first in ``--help``; then the command's own parameters, given once for
every item (a table's columns override them per item). The parser for those is built from the
command's manifest once the command is known.
"""

from __future__ import annotations

import argparse
import sys

ABOUT = "run a plugin command on many inputs: a local process pool or a Ray cluster (docs/batch.md)"


def add_parser(sub, formatter) -> None:
    p = sub.add_parser("batch", help=ABOUT, add_help=False, formatter_class=formatter)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(_handler=run, _formatter=formatter)


def _command_parser(command, formatter) -> argparse.ArgumentParser:
    from ..policy import PURPOSES

    cp = argparse.ArgumentParser(prog=f"medface batch {command.full_id}" if command else "medface batch",
                                 formatter_class=formatter, description=ABOUT)
    cp.add_argument("command", help="PLUGIN.COMMAND, e.g. phenotype.screen")
    b = cp.add_argument_group("batch")
    b.add_argument("--inputs", required=True, metavar="TABLE|FOLDER|GLOB",
                   help="a CSV or Parquet table (columns = parameters, optional id), a folder, or a glob in quotes")
    b.add_argument("--out", required=True, metavar="DIR", help="the batch folder: items/<id>/, results.parquet, ...")
    b.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: a process pool on this machine (default); ray: Ray tasks")
    b.add_argument("--workers", type=int, default=None, metavar="N", help="processes (local) or CPUs of a new local "
                                                                             "Ray cluster (default: all cores)")
    b.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                   help="join a running Ray cluster (with --engine ray)")
    b.add_argument("--streaming", choices=("auto", "on", "off"), default="auto",
                   help="ray engine, commands with streaming stages (phenotype screen): run them as a Ray Data "
                        "pipeline with the model in actors; auto: on a cluster with GPUs (default: auto)")
    b.add_argument("--resume", action="store_true", help="finish a batch: skip items whose inputs and parameters "
                                                           "are unchanged and that finished")
    b.add_argument("--max-failures", type=int, default=None, metavar="K",
                   help="stop once K items failed (a misconfigured batch)")
    b.add_argument("--input-param", default=None, metavar="NAME",
                   help="the parameter a folder's or glob's files go to (default: the command's first input file)")
    b.add_argument("--purpose", choices=PURPOSES, default=None, help="recorded in every item's provenance")
    b.add_argument("--consent", default=None, metavar="REFERENCE", help="recorded in every item's provenance")
    b.add_argument("--json", action="store_true", help="print the summary as JSON")
    if command is not None:
        from .items import output_param

        out = output_param(command)
        g = cp.add_argument_group(f"{command.full_id} parameters (the same for every item)")
        for spec in command.parameters:
            if spec.name == out:
                continue
            kwargs = {"dest": f"param_{spec.name}", "default": None,
                      "help": f"{spec.help.strip()} [{spec.describe()}]".replace("%", "%%")}
            if spec.type == "bool":
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["metavar"] = spec.type.upper()
            g.add_argument(spec.flag, **kwargs)
    return cp


def _lookup(rest: list[str]):
    from ..errors import ParameterError
    from ..plugin.registry import get_registry

    name = _positional(rest)
    if name is None:
        return None
    if "." not in name:
        raise ParameterError(f"expected PLUGIN.COMMAND (e.g. phenotype.screen), got {name!r}", parameter="command")
    return get_registry().command(name)[1]


def run(args) -> int:
    return main(list(args.rest), args._formatter)


def main(rest: list[str], formatter=argparse.HelpFormatter) -> int:
    import json

    from . import run_batch

    command = None if any(a in ("-h", "--help") for a in rest) and not _has_command(rest) else _lookup(rest)
    ns = _command_parser(command, formatter).parse_args(rest)
    params = {k[len("param_"):]: v for k, v in vars(ns).items() if k.startswith("param_") and v is not None}
    options = {k: v for k, v in {"purpose": ns.purpose, "consent": ns.consent}.items() if v is not None}
    result = run_batch(ns.command, ns.inputs, ns.out, engine=ns.engine, workers=ns.workers,
                       ray_address=ns.ray_address, resume=ns.resume, max_failures=ns.max_failures,
                       input_param=ns.input_param, params=params, options=options,
                       streaming={"auto": None, "on": True, "off": False}[ns.streaming])
    summary = result.to_dict()
    if ns.json:
        print(json.dumps(summary, indent=2))
    else:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(summary["counts"].items()))
        print(f"{result.command}: {summary['items']} items in {summary['seconds']:.1f} s on the {result.engine} engine "
              f"({summary['skipped_unchanged']} unchanged, skipped): {counts}")
        for cls, n in sorted(summary["failures_by_class"].items()):
            print(f"  failed: {cls}: {n}")
        print(f"results: {result.out / 'results.parquet'} (and .csv), report: {result.out / 'batch.html'}")
    if result.stopped:
        print(f"medface: batch {result.stopped}", file=sys.stderr)
    return result.exit_code


VALUE_OPTIONS = {"--inputs", "--out", "--engine", "--workers", "--ray-address", "--max-failures", "--input-param",
                 "--streaming", "--purpose", "--consent"}


def _positional(rest: list[str]) -> str | None:
    """The first word that is no option and no option's value: the command."""
    skip = False
    for a in rest:
        if skip:
            skip = False
        elif a in VALUE_OPTIONS:
            skip = True
        elif not a.startswith("-"):
            return a
    return None


def _has_command(rest: list[str]) -> bool:
    return _positional(rest) is not None
