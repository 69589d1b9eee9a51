"""`python -m receiver` is the `lazarus` command."""

from receiver.cli import main

main(prog_name="lazarus")
