"""heedful: do instruction-tuned language models really follow instructions?"""

__version__ = "0.1.0"
