"""reidtrace: the application layer (CLI). Top of the import graph: it may import every package."""
