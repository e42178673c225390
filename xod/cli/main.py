"""`xod-cli` entry point: command-line parsing, dispatch, and the one place errors become an
exit code and one line on stderr (a traceback only with XOD_CLI_DEBUG=1)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

from xod import __version__
from xod.cli.errors import EXIT_CODES_HELP, CliError, ExitCode, UsageError

PROG = "xod-cli"

USAGE = f"""\
usage: {PROG} COMMAND [ARGS…]
       {PROG} METHOD [--no-progress] [key=value…] [@=FILE]

xod-cli talks to a xod (or Xen Orchestra) server over its JSON-RPC WebSocket API.

commands:
  register [--expiresIn D] [--allow-unauthorized] URL EMAIL [PASSWORD]
                        sign in, create a token and store it (prompts for the password)
  register --token TOKEN URL
                        store an existing token
  unregister            revoke the stored token and forget the server
  create-token [--expiresIn D] [URL EMAIL [PASSWORD]]
                        print a new token (for the registered server when no URL)
  list-commands [--json] [GLOB…]
                        the server's methods and their params ('vm.*', '{{user,group}}.*')
  list-objects [--FIELD…] [key=value…] [--filter EXPR] [--limit N]
                        objects as a JSON array: `type=VM power_state=Running`,
                        `--filter 'type:VM name_label:web*'`, `--name_label --power_state`
  watch [--filter EXPR] [--fields F,…] [--ndjson]
                        live changes as they happen; resumes after a reconnect
  export vm ID FILE [--compress zstd|gzip] | export vdi ID FILE [--format vhd|raw]
                        download a VM as an XVA, a VDI as a VHD or raw image
  import vm SR FILE | import vdi ID FILE [--format vhd|raw]
                        upload an XVA as a new VM on SR, an image into a VDI
  rest get|post|put|patch|delete PATH [--ndjson] [key=value…]
                        the REST API: `rest get vms fields=name_label,power_state`,
                        `rest post vms/ID/actions/snapshot name_label=before`
  rest watch PATH [key=value…]
                        a collection's changes as NDJSON; resumes after a reconnect
  METHOD key=value…     call a method, print its result as JSON

values: `json:` prefix for any JSON (`tags=json:["a","b"]`), true/false, numbers (typed by
the method's params schema when the server publishes it); `@=FILE` is where a `$getFrom`
result is saved or what a `$sendTo` result gets uploaded. Actions draw a progress bar when
stdout is a terminal (not with --no-progress).

`{PROG} COMMAND --help` describes each command; `{PROG} METHOD --help` shows the method.
The configuration lives in $XDG_CONFIG_HOME/xod-cli/config.json (mode 0600).
Legacy xo-cli flags --register, --unregister, --list-commands, --list-objects still work.

{EXIT_CODES_HELP}
"""

LEGACY_FLAGS = ("--register", "--unregister", "--create-token", "--list-commands", "--list-objects")


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as a UsageError (one line, exit code 2)."""

    def __init__(self, command: str, description: str, **options: Any) -> None:
        super().__init__(
            prog=f"{PROG} {command}",
            description=description,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
            **options,
        )

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


_Result = TypeVar("_Result")


def _run(coroutine: Coroutine[Any, Any, _Result]) -> _Result:
    return asyncio.run(coroutine)


# -- commands ------------------------------------------------------------------------------------


def cmd_register(args: list[str]) -> int:
    parser = Parser("register", "Sign in, create an authentication token and store it.")
    parser.add_argument("--expiresIn", metavar="D", help="token validity: ms or '30 days'")
    parser.add_argument(
        "--allow-unauthorized",
        "--au",
        action="store_true",
        help="accept a self-signed or otherwise unverifiable TLS certificate",
    )
    parser.add_argument("--token", help="store this existing token instead of creating one")
    parser.add_argument("url", metavar="URL", help="the server, e.g. https://xod.example")
    parser.add_argument("email", metavar="EMAIL", nargs="?")
    parser.add_argument("password", metavar="PASSWORD", nargs="?", help="prompted when omitted")
    options = parser.parse_args(args)
    if options.token is None and options.email is None:
        parser.error("the following arguments are required: EMAIL")
    from xod.cli.accounts import register

    return _run(
        register(
            options.url,
            options.email,
            options.password,
            expires=options.expiresIn,
            allow_unauthorized=options.allow_unauthorized,
            token=options.token,
        )
    )


def cmd_unregister(args: list[str]) -> int:
    Parser("unregister", "Revoke the stored token and forget the server.").parse_args(args)
    from xod.cli.accounts import unregister

    return _run(unregister())


def cmd_create_token(args: list[str]) -> int:
    parser = Parser(
        "create-token",
        "Create an authentication token and print it: for the registered server, or by signing"
        " in to URL as EMAIL.",
    )
    parser.add_argument("--expiresIn", metavar="D", help="token validity: ms or '30 days'")
    parser.add_argument("--allow-unauthorized", "--au", action="store_true")
    parser.add_argument("url", metavar="URL", nargs="?")
    parser.add_argument("email", metavar="EMAIL", nargs="?")
    parser.add_argument("password", metavar="PASSWORD", nargs="?")
    options = parser.parse_args(args)
    from xod.cli.accounts import create_token_command

    return _run(
        create_token_command(
            options.url,
            options.email,
            options.password,
            expires=options.expiresIn,
            allow_unauthorized=options.allow_unauthorized,
        )
    )


def cmd_list_commands(args: list[str]) -> int:
    parser = Parser("list-commands", "List the server's methods with their params.")
    parser.add_argument("--json", action="store_true", help="the raw system.getMethodsInfo")
    parser.add_argument("globs", metavar="GLOB", nargs="*", help="e.g. 'vm.*' '{user,group}.*'")
    options = parser.parse_args(args)
    from xod.cli.discovery import list_commands

    return _run(list_commands(options.globs, options.json))


_LIST_OBJECTS_OPTIONS = {"--filter", "--limit"}


def split_field_flags(args: list[str]) -> tuple[list[str], list[str]]:
    """xo-cli's `--name_label --power_state`: any `--X` that is not an option is a field."""
    fields: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _LIST_OBJECTS_OPTIONS:
            rest.extend(args[i : i + 2])
            i += 2
            continue
        name = arg.partition("=")[0]
        if arg.startswith("--") and len(arg) > 2 and name not in (*_LIST_OBJECTS_OPTIONS, "--help"):
            fields.append(arg[2:])
        else:
            rest.append(arg)
        i += 1
    return fields, rest


def cmd_list_objects(args: list[str]) -> int:
    parser = Parser(
        "list-objects",
        "Print objects as a JSON array, streamed.\n\n"
        "  --FIELD…      keep only these fields (dotted paths allowed):\n"
        "                --name_label --power_state --CPUs.number\n"
        "  key=value…    exact filter object: type=VM power_state=Running",
        usage="xod-cli list-objects [--FIELD…] [key=value…] [--filter EXPR] [--limit N]",
    )
    parser.add_argument("--filter", metavar="EXPR", help="complex-matcher: 'type:VM web*'")
    parser.add_argument("--limit", metavar="N", type=int, help="at most N objects")
    parser.add_argument("filters", metavar="key=value", nargs="*")
    fields, rest = split_field_flags(args)
    options = parser.parse_args(rest)
    if options.limit is not None and options.limit < 1:
        parser.error("--limit must be at least 1")
    from xod.cli.objects import list_objects
    from xod.cli.values import parse_args

    filter_object = parse_args(options.filters, allow_file=False).params
    return _run(list_objects(fields, filter_object, options.filter, options.limit))


def cmd_watch(args: list[str]) -> int:
    parser = Parser(
        "watch",
        "Print object changes as they happen (Ctrl-C to stop); resumes from the last revision"
        " after a reconnect.",
    )
    parser.add_argument("--filter", metavar="EXPR", help="complex-matcher: 'type:VM'")
    parser.add_argument("--fields", metavar="F,…", help="only these fields")
    parser.add_argument("--ndjson", action="store_true", help="one JSON record per line")
    options = parser.parse_args(args)
    fields = [f for f in (options.fields or "").split(",") if f]
    from xod.cli.watch import watch

    try:
        return _run(watch(options.filter, fields, options.ndjson))
    except KeyboardInterrupt:
        return ExitCode.OK  # Ctrl-C is how a watch ends


def _transfer_parser(command: str, description: str, target: str) -> Parser:
    parser = Parser(command, description)
    parser.add_argument("kind", choices=("vm", "vdi"))
    parser.add_argument("target", metavar=target)
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--format", choices=("vhd", "raw"), help="vdi: default from FILE's name")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _show_progress(options: argparse.Namespace) -> bool:
    return not options.no_progress and sys.stderr.isatty()


def cmd_export(args: list[str]) -> int:
    parser = _transfer_parser(
        "export", "Download a VM as an XVA or a VDI as a VHD (or raw) image.", "ID"
    )
    parser.add_argument("--compress", choices=("zstd", "gzip"), help="vm: compress the XVA")
    options = parser.parse_args(args)
    from xod.cli.shortcuts import export

    return _run(
        export(
            options.kind,
            options.target,
            options.file,
            compress=options.compress,
            fmt=options.format,
            progress=_show_progress(options),
        )
    )


def cmd_import(args: list[str]) -> int:
    parser = _transfer_parser(
        "import",
        "Upload an XVA as a new VM (on the SR given) or an image into an existing VDI.",
        "SR|ID",
    )
    options = parser.parse_args(args)
    from xod.cli.shortcuts import import_

    return _run(
        import_(
            options.kind,
            options.target,
            options.file,
            fmt=options.format,
            progress=_show_progress(options),
        )
    )


def cmd_rest(args: list[str]) -> int:
    parser = Parser(
        "rest",
        "Call the REST API /rest/v0 with the registered token. PATH is relative to /rest/v0;"
        " for get/delete the pairs are query parameters, for post/put/patch the JSON body."
        " `watch PATH` prints changes as they happen and resumes after a reconnect.",
    )
    parser.add_argument("verb", metavar="get|post|put|patch|delete|watch")
    parser.add_argument("path", metavar="PATH", help="e.g. vms, vms/ID/actions/snapshot")
    parser.add_argument("pairs", metavar="key=value", nargs="*")
    parser.add_argument("--ndjson", action="store_true", help="one JSON value per line")
    options = parser.parse_args(args)
    from xod.cli import rest

    if options.verb != "watch":
        return _run(rest.request(options.verb, options.path, options.pairs, options.ndjson))
    try:
        return _run(rest.watch(options.path, options.pairs))
    except KeyboardInterrupt:
        return ExitCode.OK  # Ctrl-C is how a watch ends


METHOD_USAGE = f"""\
usage: {PROG} METHOD [--no-progress] [key=value…] [@=FILE]

Call METHOD and print its result as JSON. Values: `json:` prefix, true/false, numbers.
"""


def cmd_method(method: str, args: list[str]) -> int:
    progress = True
    call_args: list[str] = []
    for arg in args:
        if arg in ("-h", "--help"):
            from xod.cli.call import describe_method

            description = _run(describe_method(method))
            print(
                METHOD_USAGE
                + (f"\n{description}\n" if description else "")
                + "\n"
                + EXIT_CODES_HELP
            )
            return ExitCode.OK
        if arg == "--no-progress":
            progress = False
        elif arg.startswith("--"):
            raise UsageError(f"{PROG} {method}: unknown option {arg} (see --help)")
        else:
            call_args.append(arg)
    progress = progress and sys.stdout.isatty() and sys.stderr.isatty()
    from xod.cli.call import call_method

    return _run(call_method(method, call_args, progress=progress))


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "register": cmd_register,
    "unregister": cmd_unregister,
    "create-token": cmd_create_token,
    "list-commands": cmd_list_commands,
    "list-objects": cmd_list_objects,
    "watch": cmd_watch,
    "export": cmd_export,
    "import": cmd_import,
    "rest": cmd_rest,
}


def run(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write(USAGE)
        return ExitCode.USAGE
    head, args = argv[0], argv[1:]
    if head in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return ExitCode.OK
    if head == "--version":
        print(f"{PROG} {__version__}")
        return ExitCode.OK
    if head in LEGACY_FLAGS:
        print(f"{PROG}: {head} is deprecated, use `{PROG} {head[2:]}`", file=sys.stderr)
        head = head[2:]
    command = COMMANDS.get(head)
    if command is not None:
        return command(args)
    if not head.startswith("-") and "." in head:
        return cmd_method(head, args)
    raise UsageError(f"unknown command {head!r} (see `{PROG} --help`)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return int(run(argv))
    except CliError as error:
        _debug_traceback()
        print(f"{PROG}: {error.message}", file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `xod-cli list-objects | head`: the reader left; nothing is wrong on our side.
        _silence_stdout()
        return ExitCode.OK
    except Exception as error:
        _debug_traceback()
        print(f"{PROG}: unexpected error: {type(error).__name__}: {error}", file=sys.stderr)
        return ExitCode.SERVER_ERROR


def _debug_traceback() -> None:
    if os.environ.get("XOD_CLI_DEBUG"):
        traceback.print_exc()


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
