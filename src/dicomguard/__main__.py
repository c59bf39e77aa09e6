"""`python -m dicomguard` runs the command line."""

from dicomguard.cli import main

main()
