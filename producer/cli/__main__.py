"""``python -m producer.cli``: the ``jobbench`` console script without the script."""

import sys

from producer.cli import main

sys.exit(main())
