"""The `edgesnn` command line."""
