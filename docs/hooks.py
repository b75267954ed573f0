"""MkDocs hook: the CLI reference (``docs/cli.md``) is each command's own ``--help``, made from the Typer app at
build time, so it cannot drift from the code."""

from __future__ import annotations

MARKER = "<!-- nas-cli-reference -->"


def _commands():
    import typer.main

    from nas.cli._app import app

    def walk(cmd, path):
        yield path
        for name in sorted(getattr(cmd, "commands", {}) or {}):
            sub = cmd.commands[name]
            if not getattr(sub, "hidden", False):
                yield from walk(sub, [*path, name])

    return app, list(walk(typer.main.get_command(app), []))


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    from typer.testing import CliRunner

    app, paths = _commands()
    runner = CliRunner()
    parts = []
    for path in paths:
        out = runner.invoke(app, [*path, "--help"], prog_name="nas", env={"COLUMNS": "110", "NO_COLOR": "1"})
        if out.exit_code != 0:
            raise RuntimeError(f"nas {' '.join(path)} --help failed: {out.output[-500:]}")
        text = "\n".join(line.rstrip() for line in out.output.strip("\n").splitlines())
        title = " ".join(["nas", *path])
        parts.append(f"## `{title}`\n\n```text\n{text}\n```\n")
    return markdown.replace(MARKER, "\n".join(parts))
