"""Efficient Learning, Reproduced: the book's shared library."""

__version__ = "0.1.0"
