"""`python -m fieldkit` is the same as the `fieldkit` command."""

from fieldkit.cli.main import entry

entry()
