"""fieldkit: offline firmware updates for EV chargers.

Importing this package stays cheap: it loads no Textual, paramiko, pyusb or
pyserial. Those are imported by the layers that need them, when they need them.
"""

__version__ = "0.1.0"
