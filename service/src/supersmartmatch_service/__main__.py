"""``python -m supersmartmatch_service`` runs the server."""
import sys

from .server import main

sys.exit(main())
