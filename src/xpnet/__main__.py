"""``python -m xpnet`` runs the command line."""

from xpnet.cli import main

raise SystemExit(main())
