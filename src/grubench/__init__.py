"""grubench: measured answers to the folklore of training gated recurrent networks."""

__version__ = "0.1.0"
