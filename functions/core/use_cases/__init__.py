"""What an event does to the table, written against the ports in `ports.py`."""
