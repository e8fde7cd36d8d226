"""``python -m xpnet`` runs the command line (as the ``xpnet`` script does)."""

from xpnet.signals import main

raise SystemExit(main())
