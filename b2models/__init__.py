"""b2models: Brian2 models of four papers, with protocols and analyses."""

from b2models._version import __version__
