"""``rnix shell``: the interactive REPL (prompt_toolkit) and its scriptable command set."""
