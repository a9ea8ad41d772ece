"""One module per ``rlnfast`` subcommand (see rlnfast.cli)."""
