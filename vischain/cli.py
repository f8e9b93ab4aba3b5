"""`vischain`: build, check, verify and publish multi-image reasoning benchmarks.

Each command lives in its own module of vischain/commands/; this file only wires them to the typer
app. (The `imagechain` command's app is vischain/imagechain_cli.py.)
"""

from __future__ import annotations

from typing import Annotated

import typer

from vischain.commands import evaluate, generate, merge, models, publish, review, status, topics, validate, verify
from vischain.quiet import quiet_known_noise

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])


@app.callback()
def main(verbose: Annotated[bool, typer.Option(
        "--verbose", help="Show every library message too (the known-harmless ones in vischain/quiet.py are hidden).")]
         = False):
    """Build, check, verify and publish multi-image reasoning benchmarks."""
    if not verbose:
        quiet_known_noise()


app.command("tiny")(models.tiny)
app.command("chat")(models.chat)
app.command("serve")(models.serve)
app.command("topics")(topics.topics)
app.command("generate")(generate.generate)
app.command("merge")(merge.merge)
app.command("validate")(validate.validate)
app.command("publish")(publish.publish)
app.command("export")(publish.export)
app.command("eval")(evaluate.evaluate)
app.command("verify")(verify.verify)
app.command("status")(status.status)
app.add_typer(review.app, name="review")


if __name__ == "__main__":
    app()
