"""What every request passes before a route: :mod:`.guard` (request ids, API key, body size),
:mod:`.json_shape` (depth, length and key limits of a JSON body), :mod:`.read_routing` (the
read-your-writes header), :mod:`.tracing` (a span per request)."""
