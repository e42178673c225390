"""`python -m xod …` is the `xod` command."""

from xod.daemon import main

main()
