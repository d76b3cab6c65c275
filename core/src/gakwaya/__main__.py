"""``python -m gakwaya``: the same command line as the ``gakwaya`` script."""

from gakwaya.cli import main

if __name__ == "__main__":
    main(prog_name="gakwaya")
