import sys

from ingestd.commands.cli import main

sys.exit(main())
