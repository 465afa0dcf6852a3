"""`python -m chainchat.cli` is the `chainchat` command."""

from chainchat.cli import main

main()
