"""`python -m receiver.lab serve ...`: the lab's CLI without the rest of Lazarus."""

from receiver.lab.cli import lab

if __name__ == "__main__":
    lab(prog_name="python -m receiver.lab")
