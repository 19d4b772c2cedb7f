"""The `preflight` command line. Imports stay inside commands so --help and explain start fast."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from preflight.errors import InputError, SignInError
from preflight.output import FailOn, FailOnOpt, Format, FormatOpt, OutputOpt, TextFormat, TextFormatOpt
from preflight.pipeline import as_of_date, default_registry

if TYPE_CHECKING:
    from typer.models import CommandInfo

    from preflight.providers import Registry
    from preflight.runsecrets import RunSecrets

EXIT_HELP = (
    "Exit codes: 0 every mailbox ready; 1 a check failed; 2 bad input; "
    "3 incomplete (a check could not be evaluated); 4 could not sign in or reach the admin APIs; "
    "130 interrupted (Ctrl-C: one line on stderr, no traceback)."
)
SummaryOpt = Annotated[
    bool, typer.Option("--summary", help="Print only the verdict counts per tenant (table or json).")
]


AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="Evaluate date-dependent checks as of this day (YYYY-MM-DD).")
]


def make_app(registry_factory: Callable[[], Registry] = default_registry,
             argv: Sequence[str] | None = None) -> typer.Typer:
    """The whole command line; with `argv` only what that command line can reach.

    Turning a command into click's form reads every annotation of its function, and filling the provider
    groups loads every plugin: most of `preflight --help`'s time. So when `argv` names one of the commands
    (its first word that is not an option) the app holds only that one, and the groups check, login, logout
    and auth-check get their provider subcommands only when the command line names the group. `--help`
    and `explain` thus load no plugin. None builds everything (shell completion reads the whole tree).
    """
    word = None if argv is None else next((a for a in argv if not a.startswith("-")), None)
    app = typer.Typer(
        name="preflight",
        help="Will SMTP from a third-party service work for this Microsoft 365 / Google Workspace mailbox? "
        "If not, what blocks it and how to fix it.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        epilog=EXIT_HELP,
    )

    @app.callback()
    def root(
        debug: Annotated[
            bool, typer.Option("--debug", help="Log HTTP calls and internals to stderr (secrets masked).")
        ] = False,
        version: Annotated[
            bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Show the version and exit.")
        ] = False,
    ) -> None:
        if debug:
            from preflight.logs import enable_debug

            enable_debug()

    @app.command()
    def evaluate(
        snapshots: Annotated[list[Path], typer.Argument(help="Snapshot files (preflight.snapshot/v1).")],
        fmt: FormatOpt = Format.table,
        output: OutputOpt = None,
        fail_on: FailOnOpt = FailOn.fail,
        as_of: AsOfOpt = None,
        summary: SummaryOpt = False,
    ) -> None:
        """Evaluate saved snapshots offline and report."""
        from preflight.pipeline import emit, evaluate_snapshots

        _summary_format(summary, fmt)
        results = evaluate_snapshots(snapshots, registry_factory(), as_of_date(as_of))
        raise typer.Exit(emit(results, fmt, output, fail_on, summary=summary))

    @app.command()
    def demo(
        html: Annotated[
            Path, typer.Option("--html", help="Where to write the HTML report.")
        ] = Path("preflight-demo.html"),
        fmt: FormatOpt = Format.table,
        output: OutputOpt = None,
        as_of: AsOfOpt = "2026-11-26",
        summary: SummaryOpt = False,
    ) -> None:
        """Run the whole pipeline on bundled simulated tenants: no credentials needed."""
        from preflight.demo import run_demo

        _summary_format(summary, fmt)
        run_demo(registry_factory(), html, fmt, as_of_date(as_of), output=output, summary=summary)

    @app.command()
    def explain(
        text: Annotated[str | None, typer.Argument(help="The error text. Omit to read --file or stdin.")] = None,
        file: Annotated[Path | None, typer.Option("--file", help="Read the error text from a file.")] = None,
        fmt: TextFormatOpt = TextFormat.table,
        provider: Annotated[
            str | None, typer.Option("--provider", help="microsoft or google, for the right fix.")
        ] = None,
        output: OutputOpt = None,
    ) -> None:
        """Turn an SMTP / OAuth error message into its cause and fix."""
        from preflight.explain_cli import run_explain

        raise typer.Exit(run_explain(text, file, fmt.value, provider, output))

    @app.command()
    def causes(
        cause_id: Annotated[str | None, typer.Argument(metavar="ID", help="Show this cause in full.")] = None,
        fmt: TextFormatOpt = TextFormat.table,
        output: OutputOpt = None,
    ) -> None:
        """List the cause catalogue, or show one cause: explanation, fix per provider, docs."""
        from preflight.listing import list_causes

        list_causes(fmt.value, cause_id, output, registry_factory)

    @app.command()
    def checks(
        check_id: Annotated[str | None, typer.Argument(metavar="ID", help="Show this check in full.")] = None,
        fmt: TextFormatOpt = TextFormat.table,
        output: OutputOpt = None,
    ) -> None:
        """List the registered checks of every provider, or show one check in full."""
        from preflight.listing import list_checks

        list_checks(registry_factory(), fmt.value, check_id, output)

    @app.command("providers")
    def list_providers(fmt: TextFormatOpt = TextFormat.table, output: OutputOpt = None) -> None:
        """List the installed provider plugins and the optional hooks each implements."""
        from preflight.listing import list_providers

        list_providers(registry_factory(), fmt.value, output)

    groups = {
        "check": "Sign in, collect, evaluate and report one tenant. Or give just the address: "
                 "`preflight check jobs@contoso.com` finds the provider, host and tenant itself.",
        "login": "Sign in and cache the token.",
        "logout": "Remove cached tokens.",
        "auth-check": "Test what the credentials can read.",
    }
    # Commands defined in modules of their own (preflight.<module>.cli), imported only when they can be reached.
    external = {"audit": "audit", "diff": "audit", "redact": "audit", "probe": "probe"}
    known = {_name(c) for c in app.registered_commands} | set(external) | set(groups)
    # A first word that names no command builds them all: click then suggests the closest.
    only = word if word in known else None
    for name, module in external.items():
        if only in (None, name):
            func = getattr(import_module(f"preflight.{module}.cli"), name)
            app.command(epilog=getattr(func, "epilog", None))(func)
    listing = argv is not None and word is None  # root options only (--help, --version): no command can run
    providers = registry_factory().all() if argv is None or only in groups else []
    for group, help_text in groups.items():
        if only not in (None, group):
            continue
        sub = typer.Typer(help=help_text, no_args_is_help=True)
        if group == "check" and not listing:  # `preflight check ADDRESS`: the provider found from the address
            from preflight.discovery_cli import address_group

            sub = address_group(help_text)
        for provider in providers:
            func = provider.commands().get(group)
            if func is not None:
                sub.command(provider.name)(func)
        app.add_typer(sub, name=group)
    if only is not None:
        app.registered_commands = [c for c in app.registered_commands if _name(c) == only]
    elif listing:
        for info in app.registered_commands:
            info.callback = _listed_only(info.callback)
    return app


def _listed_only(func: Callable[..., Any] | None) -> Callable[[], None]:
    """A stand-in with `func`'s name and docstring and no parameters: all that listing a command in the root
    --help reads, without the cost of turning each of its parameters into an option."""

    def listed() -> None:
        raise AssertionError("a command listed in the root help is never run")

    listed.__name__, listed.__doc__ = getattr(func, "__name__", ""), getattr(func, "__doc__", None)
    return listed


def _name(info: CommandInfo) -> str:
    return info.name or typer.main.get_command_name(getattr(info.callback, "__name__", ""))


def _print_version(value: bool) -> None:
    if value:
        from preflight import __version__

        sys.stdout.write(f"preflight {__version__}\n")
        raise typer.Exit(0)


def _summary_format(summary: bool, fmt: Format) -> None:
    if summary and fmt not in (Format.table, Format.json):
        raise InputError(f"--summary prints table or json, not {fmt.value}")


def _no_type(ctx: Any) -> None:
    return None


# typer's help shows Python types (<bool>, <list[Path]>, <str>); people expect click's plain words.
_METAVARS = {"str": "TEXT", "Path": "PATH", "int": "INTEGER", "float": "NUMBER"}


def tidy_help(command: Any) -> None:
    """Plain metavars in --help: flags show none, lists show ITEM..., types show TEXT/PATH/INTEGER."""
    from typer.core import TyperArgument, TyperOption

    for param in getattr(command, "params", []):
        if isinstance(param, TyperArgument):
            setattr(param, "display_type_rich", _no_type)  # noqa: B010 - the name column says it already
        if param.metavar is not None or not hasattr(param, "display_type"):
            continue
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
            continue
        shown = param.display_type(typer.Context(command)).strip("<>")
        many = shown.startswith("list[") and shown.endswith("]")
        inner = shown[5:-1] if many else shown
        # Choices get spaces around | so a narrow column wraps between them, never inside a word.
        word = inner.replace("|", " | ") if "|" in inner else _METAVARS.get(inner, inner.upper())
        if isinstance(param, TyperArgument):
            param.metavar = (param.name or word).upper() + ("..." if many else "")
        else:
            param.metavar = word
    help_option = getattr(command, "get_help_option", None)
    if help_option is not None:
        def plain_help(ctx: Any, original: Any = help_option) -> Any:
            option = original(ctx)
            if option is not None:
                option.metavar = ""
            return option

        setattr(command, "get_help_option", plain_help)  # noqa: B010 - --help is built on demand
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def main(argv: list[str] | None = None) -> None:
    from preflight import interrupt
    from preflight.logs import masked_logging
    from preflight.runsecrets import RunSecrets, run_scope

    secrets = RunSecrets()  # this run's secrets: every command adds what it learns, every output masks them
    with masked_logging(secrets), run_scope(secrets), interrupt.immediate():
        code = _run(argv, secrets)
    sys.exit(code)


def _run(argv: list[str] | None, secrets: RunSecrets) -> int:
    def say(prefix: str, message: str) -> None:
        sys.stderr.write(f"{prefix}{secrets.mask(_one_line(message))}\n")

    try:
        completing = "_PREFLIGHT_COMPLETE" in os.environ  # the shell asks for completions: the whole tree
        words = None if completing else list(sys.argv[1:] if argv is None else argv)
        command = typer.main.get_command(make_app(argv=words))
        tidy_help(command)
        result: Any = command.main(args=argv, standalone_mode=False, prog_name="preflight")
        if result == 130:  # typer turns Ctrl-C into a silent exit code 130
            sys.stderr.write("preflight: interrupted\n")
        return result if isinstance(result, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # typer's usage errors: bad option, missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.stderr.write(exc.format_message() + "\n")
            return 0
        say("preflight: error: ", exc.format_message())
        return 2
    except InputError as exc:
        say("preflight: error: ", str(exc))
        return 2
    except SignInError as exc:
        say("preflight: sign-in failed: ", str(exc))
        return 4
    except OSError as exc:  # a folder or file we were told to write to cannot be written
        where = f"{exc.filename}: " if exc.filename else ""
        say("preflight: error: ", f"{where}{exc.strerror or type(exc).__name__}")
        return 2
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("preflight: interrupted\n")
        return 130
    except Exception as exc:  # a bug must still not print a traceback (it may hold a secret): one line
        import logging

        logging.getLogger("preflight").debug("internal error", exc_info=True)
        say("preflight: internal error: ", f"{type(exc).__name__}: {exc} (re-run with --debug for details)")
        return 1
