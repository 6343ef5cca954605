"""Table Storage failures on demand: a transport for the real Tables SDK that fails chosen requests
as a dropped connection does (`ServiceRequestError`), and passes every other one to Azurite."""

from __future__ import annotations

from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.transport import RequestsTransport


class FlakyTransport(RequestsTransport):
    """Counts the requests it sends; those whose number is in `fail` are not sent but fail."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.fail: set[int] = set()
        self.failed: list[str] = []

    def send(self, request, **kwargs):
        self.sent += 1
        if self.sent in self.fail:
            self.failed.append(f"{request.method} {request.url.split('?')[0]}")
            raise ServiceRequestError(f"injected: Table Storage unreachable (request {self.sent})")
        return super().send(request, **kwargs)
