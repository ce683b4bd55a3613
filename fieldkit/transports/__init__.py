"""Byte links only: serial (pyserial URLs), USB (pyusb), SSH (paramiko exec + SFTP)."""
