"""`python -m agent`: the same as the `supportbroker-agent` command."""

from .cli import main

raise SystemExit(main())
