"""Route handlers, one module per resource; each endpoint found by its path."""
