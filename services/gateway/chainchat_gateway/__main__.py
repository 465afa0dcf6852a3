"""`python -m chainchat_gateway` runs one gateway instance."""

from chainchat_gateway.app import create_app
from chainchat_gateway.settings import GatewaySettings
from chainchat_service.web import run_http


def main() -> None:
    settings = GatewaySettings()
    run_http(create_app(settings), settings, ws_per_message_deflate=settings.ws_per_message_deflate)


if __name__ == "__main__":
    main()
