"""Partner API routes, thin: parse the request, call the domain, serialize the answer."""
