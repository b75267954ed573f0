"""Command-line entry point: ``nas``. A :class:`~nas.errors.NasError`, or the machine refusing a write
(:func:`~nas.errors.environment_fault`: a full disk, a read-only folder), is printed on one line, exit status 1."""

from __future__ import annotations

import sys

__all__ = ["main", "app", "print_proxy_report"]


def print_proxy_report(report) -> None:
    """Print a :class:`nas.fidelity.ProxyCheckReport` as ``nas proxy check`` does (its tables and recommendation)."""
    from nas.cli._proxy import print_report  # (rich and the command's modules only when asked)

    print_report(report)


def main(argv: list[str] | None = None) -> int:
    import os

    # the command line is an application: TensorFlow's C++ start-up chatter stays off unless the user asks for it
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = sys.argv[1:]
    root_opts = set(args[: next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))])
    if argv is None and not {"-v", "--verbose"} & root_opts:  # the process is the command line's own
        from nas.cli._quiet import filter_native_stderr

        filter_native_stderr()
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # not "Creating initial MLflow database tables"
        import logging

        # MLflow logs a database error with its traceback, then raises it: the error reaches the command line,
        # which prints it as one line (a filter, since MLflow's logging set-up resets its loggers' levels)
        logging.getLogger("mlflow.store.db.utils").addFilter(lambda record: record.levelno < logging.ERROR)
    from nas.cli._app import app
    from nas.errors import NasError

    try:
        rc = app(args=argv, prog_name="nas", standalone_mode=False)
        if rc == 130:  # Typer turns Ctrl-C into exit status 130 and says nothing
            sys.stderr.write("interrupted\n")
    except NasError as exc:
        from nas._validation import one_line

        sys.stderr.write(f"error: {one_line(str(exc))}\n")
        return 1
    except SystemExit as exc:  # typer.Exit inside standalone_mode=False
        return int(exc.code or 0)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:  # a full disk, a read-only folder; usage errors, as Typer's own Click raises them
        from nas.errors import environment_fault

        fault = environment_fault(exc)
        if fault is not None:
            sys.stderr.write(f"error: {fault}\n")
            return 1
        click_exception, abort = _click_errors()
        if isinstance(exc, click_exception):
            exc.show()
            return exc.exit_code
        if isinstance(exc, abort):
            sys.stderr.write("aborted\n")
            return 1
        raise
    return rc if isinstance(rc, int) else 0


def _click_errors() -> tuple[type[BaseException], type[BaseException]]:
    """The ClickException and Abort classes of the Click that Typer uses. Typer may carry its own copy of Click,
    whose classes are not ``click.exceptions``'s: they are found from Typer's public names instead."""
    import typer

    base = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    return base, typer.Abort


def __getattr__(name: str):
    if name == "app":
        from nas.cli._app import app

        return app
    raise AttributeError(name)
