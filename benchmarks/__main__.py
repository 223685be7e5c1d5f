import sys

from refimpl.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
