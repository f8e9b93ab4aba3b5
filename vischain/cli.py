"""`vischain`: build, check, verify and publish multi-image reasoning benchmarks.

Each command lives in its own module; this file only wires them to the typer app.
"""

from __future__ import annotations

import typer

from vischain import (
    eval_command,
    generate_command,
    merge,
    model_commands,
    publish_command,
    validate_command,
    verify_command,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
app.command("tiny")(model_commands.tiny)
app.command("chat")(model_commands.chat)
app.command("serve")(model_commands.serve)
app.command("generate")(generate_command.generate)
app.command("merge")(merge.merge)
app.command("validate")(validate_command.validate)
app.command("publish")(publish_command.publish)
app.command("export")(publish_command.export)
app.command("eval")(eval_command.evaluate)
app.command("verify")(verify_command.verify)


if __name__ == "__main__":
    app()
