"""b2models: Brian2 models of four papers, with protocols and analyses."""

__version__ = "0.1.0"
