"""Table Storage failures on demand: a transport for the real Tables SDK that fails chosen requests
as a dropped connection does (`ServiceRequestError`), and passes every other one to Azurite."""

from __future__ import annotations

from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.transport import RequestsTransport


class FlakyTransport(RequestsTransport):
    """Counts the requests it sends; those whose number is in `fail`, or that `fail_when` picks
    (it sees the method, URL and body as text), are not sent but fail."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.fail: set[int] = set()
        self.fail_when = lambda text: False
        self.failed: list[str] = []

    def send(self, request, **kwargs):
        self.sent += 1
        body = request.body if isinstance(request.body, str) else (request.body or b"").decode("utf-8", "replace")
        if self.sent in self.fail or self.fail_when(f"{request.method} {request.url}\n{body}"):
            self.failed.append(f"{request.method} {request.url.split('?')[0]}")
            raise ServiceRequestError(f"injected: Table Storage unreachable (request {self.sent})")
        return super().send(request, **kwargs)
