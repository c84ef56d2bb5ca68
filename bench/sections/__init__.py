"""One module per `make bench` section; each has a `run()` whose docstring is its title."""
