"""The request handlers, grouped by family, and how their answers are spelled on the wire; they
answer through the `Client` interface (handlers.client), never the server itself."""
