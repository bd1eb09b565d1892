"""``python -m srbench`` runs the CLI."""

from srbench.cli import main

raise SystemExit(main())
