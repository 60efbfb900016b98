"""The Lambda side: environment, settings, AWS clients, observability, the handler shape."""
