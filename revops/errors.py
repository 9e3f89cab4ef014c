class ApplicationError(Exception):
    """A business rule said no. The message is shown to the person or API client as is."""

    def __init__(self, message: str, *, details: list | dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
