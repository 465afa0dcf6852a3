"""`python -m chainchat_chat` runs one instance of the chat service."""

from chainchat_chat.app import create_app
from chainchat_chat.settings import ChatSettings
from chainchat_service.web import run_http


def main() -> None:
    settings = ChatSettings()
    run_http(create_app(settings), settings)


if __name__ == "__main__":
    main()
