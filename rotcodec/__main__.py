"""``python -m rotcodec`` is the ``rotcodec`` command."""

import sys

from rotcodec.cli import main

sys.exit(main())
