"""`python -m chainchat_files` runs one instance of the files service."""

from chainchat_files.app import create_app
from chainchat_files.settings import FilesSettings
from chainchat_service.web import run_http


def main() -> None:
    settings = FilesSettings()
    run_http(create_app(settings), settings)


if __name__ == "__main__":
    main()
