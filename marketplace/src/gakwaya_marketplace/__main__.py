import sys

from gakwaya_marketplace.cli import main

sys.exit(main())
