"""The `agenttts` command line. Each module here with a `register(subparsers)` adds commands."""
