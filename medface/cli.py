"""The ``medface`` command.

Core commands (``plugins``, ``doctor``) plus one sub-command per plugin command, generated from
the plugin manifests: ``medface <plugin> <command> --param value``. Errors a user can cause are
printed as one message with an exit code (``docs/cli.md``); only bugs print a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

from .version import __version__
from .errors import EXIT_CODES, MedfaceError, PluginError
from .policy import PURPOSES

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=32, width=100)


def _registry():
    from .plugin.registry import get_registry

    return get_registry()


# ---------------------------------------------------------------------------------------------
# plugins ...
def _cmd_plugins_list(args) -> int:
    registry = _registry()
    if args.imports:
        registry.check_imports()
    infos = [registry[n] for n in registry]
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    if not infos:
        print("no plugins found (install some, or list folders in MEDFACE_PLUGIN_PATH)")
        return 0
    width = max(len(i.name) for i in infos)
    for i in infos:
        title = i.title
        line = f"{i.name:<{width}}  {i.status:<6}  {i.version:<8}  {title}"
        print(line.rstrip())
        if not i.ok:
            print(f"{'':<{width}}  reason: {i.reason}")
    return 0


def _cmd_plugins_info(args) -> int:
    info = _registry()[args.name]
    if args.json:
        d = info.to_dict()
        d["manifest"] = info.manifest.to_dict() if info.manifest else None
        print(json.dumps(d, indent=2))
        return 0
    print(f"{info.name}: {info.status}" + (f" ({info.reason})" if info.reason else ""))
    print(f"  source:   {info.source}")
    print(f"  location: {info.location}")
    m = info.manifest
    if m is None:
        return 0
    print(f"  title:    {m.title}\n  version:  {m.version}\n  category: {m.category}")
    print(f"  contributors: {', '.join(m.contributors)}")
    if m.requirements:
        print(f"  requirements: {', '.join(m.requirements)}")
    print(f"\n{m.help.strip()}\n")
    if m.acknowledgement:
        print(f"Acknowledgement: {m.acknowledgement.strip()}\n")
    print("commands:")
    for c in m.commands:
        print(f"  {c.id:<16} {c.heading}")
        for p in c.parameters:
            print(f"      {p.flag:<20} {p.describe()}")
    if m.panels:
        print("\npanels (the workstation):")
    for panel in m.panels:
        print(f"  {panel.id:<16} {panel.heading}")
        for p in panel.parameters:
            print(f"      {p.name:<20} {p.describe()}")
    return 0


def _cmd_plugins_validate(args) -> int:
    from .errors import ManifestError
    from .plugin.manifest import read_manifest

    failures = 0
    if args.paths:
        for path in args.paths:
            try:
                m = read_manifest(path)
                print(f"ok      {m.name} ({path})")
            except ManifestError as exc:
                failures += 1
                print(f"invalid {exc}")
        return 1 if failures else 0
    registry = _registry()
    imports = registry.check_imports() if args.imports else {}
    for name in registry:
        info = registry[name]
        problem = imports.get(name) or info.reason
        print(f"{'ok' if not problem else 'broken':<7} {name}" + (f": {problem}" if problem else ""))
        failures += bool(problem)
    return 1 if failures else 0


def _cmd_plugins_selftest(args) -> int:
    from .plugin.selftest import run_selftests

    outcomes = run_selftests(args.name)
    if args.json:
        print(json.dumps([o.to_dict() for o in outcomes], indent=2))
    else:
        for o in outcomes:
            print(f"{'PASS' if o.passed else 'FAIL'}  {o.plugin:<12} {o.duration_s:6.2f} s  {o.message}")
    return 0 if outcomes and all(o.passed for o in outcomes) else 1


def _cmd_plugins_schema(args) -> int:
    from .plugin.manifest import manifest_reference, manifest_schema_text

    text = manifest_reference() if args.markdown else manifest_schema_text()
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_sample_data(args) -> int:
    from .phantom.sample_data import write_sample_data

    index = write_sample_data(args.out, seed=args.seed)
    total = sum(f["bytes"] for f in index["files"].values())
    print(f"wrote {len(index['files'])} sample files ({total / 1e6:.1f} MB) to {args.out}; see {args.out}/index.json")
    return 0


def _cmd_export_slicer(args) -> int:
    from .workstation.slicer_scene import export_slicer  # slicer-core loads only for this command

    print(f"wrote {export_slicer(args.result_dir, args.mrb)}")
    return 0


def _cmd_doctor(args) -> int:
    from .doctor import collect, format_report

    report = collect()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


# ---------------------------------------------------------------------------------------------
# plugin commands, generated from manifests
def _print_result(result, as_json: bool) -> None:
    if as_json:  # the result with the exit code of its status (8 for a refused input)
        print(json.dumps({**result.to_dict(), "exit_code": result.exit_code}, indent=2, allow_nan=False))
        return
    done = f"refused in {result.provenance.duration_s:.2f} s: {result.refusal}" if result.refused \
        else f"done in {result.provenance.duration_s:.2f} s"
    print(f"{result.command}: {done}")
    for key, value in result.summary.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, (list, tuple)):
            value = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
        print(f"  {key}: {value}")
    for w in result.warnings:
        print(f"  warning: {w}")
    if result.outputs:
        print("outputs:")
        for name, path in result.outputs.items():
            print(f"  {name}: {path}")


def _run_plugin_command(args) -> int:
    from .plugin.runner import run_command
    from .policy import RunOptions

    command = args._command
    params = {}
    for spec in command.parameters:
        value = getattr(args, spec.name, None)
        if value is not None:
            params[spec.name] = value
    options = RunOptions.from_kwargs({"purpose": args._purpose, "consent": args._consent,
                                      "record_paths": args._record_paths, "embed_images": args._embed_images,
                                      "face_images": args._face_images, "audit_log": args._audit_log})
    result = run_command(command.full_id, params, quiet=args.json, options=options)
    _print_result(result, args.json)
    if result.refused:
        print(f"medface: input refused: {result.refusal}", file=sys.stderr)
    return result.exit_code


def _add_run_options(cp) -> None:
    """The options every plugin command takes (docs/privacy.md), beside --json."""
    group = cp.add_argument_group("run options (privacy, purpose, audit; docs/privacy.md)")
    group.add_argument("--purpose", dest="_purpose", choices=PURPOSES, default=None,
                       help="why this person's data is processed; recorded in the provenance, report and audit log")
    group.add_argument("--consent", dest="_consent", metavar="REFERENCE", default=None,
                       help="a reference to the consent or authorisation (case, protocol or form number)")
    group.add_argument("--record-paths", dest="_record_paths", action="store_true",
                       help="record absolute input paths (default: file names and sha256 only)")
    group.add_argument("--embed-images", dest="_embed_images", action="store_true",
                       help="embed face pictures in report.html (default: link to the files)")
    group.add_argument("--no-face-images", dest="_face_images", action="store_false",
                       help="leave every face picture (crops, overlays, face renders) out of the outputs")
    group.add_argument("--audit-log", dest="_audit_log", metavar="PATH", default=None,
                       help="append one JSON line about this run (inputs, outputs, models, user) to this file")


def _broken_plugin(args) -> int:
    raise PluginError(f"plugin '{args._plugin.name}' is broken: {args._plugin.reason}")


def _add_plugin_parsers(sub, wanted: str | None) -> None:
    """A parser per plugin; only the ``wanted`` plugin's commands are built in full (from its
    validated manifest): the others need only their titles, for `medface --help`."""
    registry = _registry()
    for name in registry:
        info = registry[name]
        if "@" in name:
            continue
        if name == wanted and info.ok and info.manifest is not None:
            _add_full_plugin_parser(sub, info.manifest)
            continue
        broken = "" if info.ok else f" [broken: {info.reason[:80]}]"
        p = sub.add_parser(name, help=f"{info.title or '(broken)'}{broken}", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(_handler=_broken_plugin, _plugin=info)


def _add_full_plugin_parser(sub, m) -> None:
    p = sub.add_parser(m.name, help=m.title, description=f"{m.title} (v{m.version})\n\n{m.help.strip()}",
                       formatter_class=_Formatter)
    csub = p.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for c in m.commands:
        _add_command_parser(csub, c)


def _add_command_parser(csub, command) -> None:
    first = command.help.strip().splitlines()[0]
    cp = csub.add_parser(command.id, help=command.title or first, formatter_class=_Formatter,
                         description=f"{command.title + chr(10) * 2 if command.title else ''}{command.help.strip()}")
    required = cp.add_argument_group("required parameters")
    optional = cp.add_argument_group("optional parameters")
    for spec in command.parameters:
        group = required if spec.required and spec.default is None else optional
        help_text = f"{spec.help.strip()} [{spec.describe()}]".replace("%", "%%")
        kwargs = {"dest": spec.name, "help": help_text, "default": None}
        if spec.type == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = "{" + ",".join(spec.choices) + "}" if spec.choices else spec.type.upper()
        group.add_argument(spec.flag, **kwargs)
    cp.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_run_options(cp)
    cp.set_defaults(_handler=_run_plugin_command, _command=command)


# ---------------------------------------------------------------------------------------------
def _add_plugins_parser(sub) -> None:
    plugins = sub.add_parser("plugins", help="list, inspect, validate and self-test plugins")
    psub = plugins.add_subparsers(metavar="ACTION", required=True)
    p = psub.add_parser("list", help="list plugins and their status")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--imports", action="store_true", help="also import each plugin's code to check it loads")
    p.set_defaults(_handler=_cmd_plugins_list)
    p = psub.add_parser("info", help="show a plugin's manifest: commands and parameters")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(_handler=_cmd_plugins_info)
    p = psub.add_parser("validate", help="validate installed plugins, or the manifest files given")
    p.add_argument("paths", nargs="*", help="manifest files or plugin folders (default: every plugin found)")
    p.add_argument("--imports", action="store_true", help="also import plugin code")
    p.set_defaults(_handler=_cmd_plugins_validate)
    p = psub.add_parser("selftest", help="run plugin self-tests on sample data")
    p.add_argument("name", nargs="?", help="one plugin (default: all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(_handler=_cmd_plugins_selftest)
    p = psub.add_parser("schema", help="the manifest's JSON Schema (for editors), or its key reference")
    p.add_argument("--markdown", action="store_true", help="the key-by-key reference (docs/plugin-guide.md)")
    p.add_argument("--out", help="write to this file instead of printing (e.g. medface/plugin/manifest.schema.json)")
    p.set_defaults(_handler=_cmd_plugins_schema)


def _add_view_parser(sub, *, full: bool) -> None:
    """`medface view`; its options (which import numpy) are built only when it is the command."""
    about = "show a mesh or volume: PNG, HTML or a window (docs/viewing.md)"
    if not full:
        sub.add_parser("view", help=about, add_help=False).add_argument("rest", nargs=argparse.REMAINDER)
        return
    p = sub.add_parser("view", help=about, formatter_class=_Formatter)
    from .viz import cli_view  # pyvista loads only when the command runs

    cli_view.add_arguments(p)
    p.set_defaults(_handler=cli_view.run)


def build_parser(with_plugins: bool = True, plugin: str | None = None) -> argparse.ArgumentParser:
    """The command-line parser; ``plugin`` (the first word of the command line) is the plugin
    whose commands get full parsers."""
    epilog = "exit codes:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="medface", formatter_class=_Formatter, epilog=epilog,
        description="Facial analysis for healthcare and forensics. Not a medical device.")
    parser.add_argument("--version", action="version", version=f"medface {__version__}")
    parser.add_argument("--verbose", action="store_true", help="print tracebacks for every error")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_plugins_parser(sub)

    p = sub.add_parser("doctor", help="report versions, devices and plugin status for bug reports")
    p.add_argument("--json", action="store_true")
    p.set_defaults(_handler=_cmd_doctor)

    p = sub.add_parser("sample-data", help="write the synthetic sample head (CT, meshes, landmarks, photos)")
    p.add_argument("--out", default="sample_data", help="output folder (default: sample_data)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    p.set_defaults(_handler=_cmd_sample_data)

    about = ("write a result folder as a 3D Slicer scene bundle (.mrb): volumes, models with colour maps, markups "
             "(docs/workstation.md)")
    p = sub.add_parser("export-slicer", help=about, description=about)
    p.add_argument("result_dir", metavar="RESULT_DIR", help="a folder a command wrote with --out (has result.json)")
    p.add_argument("mrb", metavar="MRB", help="the bundle to write, e.g. scene.mrb")
    p.set_defaults(_handler=_cmd_export_slicer)

    _add_view_parser(sub, full=plugin in (None, "view"))
    from .batches.cli import add_parser as add_batch_parser

    add_batch_parser(sub, _Formatter)
    from .workstation.cli import add_parser as add_app_parser

    add_app_parser(sub, _Formatter)

    if with_plugins:
        _add_plugin_parsers(sub, plugin)
    return parser


def _join_spaced_command(argv: list[str]) -> list[str]:
    """`medface PLUGIN WORD1 WORD2 ...` runs the command `WORD1-WORD2` when the plugin has no
    command WORD1 (so `medface phenotype gallery add` is `medface phenotype gallery-add`)."""
    if len(argv) < 3 or argv[1].startswith("-") or argv[2].startswith("-"):
        return argv
    core = ("plugins", "doctor", "view", "sample-data", "batch", "app", "export-slicer")
    info = _registry().get(argv[0]) if argv[0] not in core else None
    manifest = getattr(info, "manifest", None) if info is not None and info.ok else None
    if manifest is None:
        return argv
    ids = {c.id for c in manifest.commands}
    joined = f"{argv[1]}-{argv[2]}"
    if argv[1] not in ids and joined in ids:
        return [argv[0], joined, *argv[3:]]
    return argv


INTERNAL_HINT = ("this is a bug in medface or a plugin; please report it with the traceback above and the output of "
                 "`medface doctor`")


def _print_json_error(doc: dict) -> None:
    """With --json, stdout gets the error as one JSON object (what a script parses)."""
    print(json.dumps(doc, indent=2))


def _medface_error(exc: MedfaceError, *, as_json: bool, verbose: bool) -> int:
    if verbose:
        traceback.print_exc()
    print(f"medface: error: {exc}", file=sys.stderr)
    if as_json:
        _print_json_error(exc.to_dict())
    return exc.exit_code


def _internal_error(exc: Exception, *, as_json: bool) -> int:
    traceback.print_exc()
    print(f"medface: internal error: {INTERNAL_HINT}", file=sys.stderr)
    if as_json:
        _print_json_error({"error": type(exc).__name__, "message": str(exc), "hint": INTERNAL_HINT,
                           "exit_code": EXIT_INTERNAL})
    return EXIT_INTERNAL


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv or bool(os.environ.get("MEDFACE_VERBOSE"))
    as_json = "--json" in argv
    try:
        if argv[:1] == ["batch"]:  # its parameters come from the command it runs
            from .batches.cli import main as batch_main

            return batch_main(argv[1:], _Formatter)
        parser = build_parser(plugin=next((a for a in argv if not a.startswith("-")), None))
        args = parser.parse_args(_join_spaced_command(argv))
        handler = getattr(args, "_handler", None)
        if handler is None:
            parser.print_help()
            return 0
        return int(handler(args) or 0)
    except MedfaceError as exc:
        return _medface_error(exc, as_json=as_json, verbose=verbose)
    except KeyboardInterrupt:
        print("medface: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as exc:
        return _internal_error(exc, as_json=as_json)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
