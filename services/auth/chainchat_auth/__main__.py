"""`python -m chainchat_auth` runs one instance of the auth service."""

from chainchat_service.web import run_http

from chainchat_auth.app import create_app
from chainchat_auth.settings import AuthSettings


def main() -> None:
    settings = AuthSettings()
    run_http(create_app(settings), settings)


if __name__ == "__main__":
    main()
