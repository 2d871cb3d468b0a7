"""make bench (accept): the trivial WSGI app gunicorn and uWSGI serve, so
the figures measure accept and the server loop, not the application."""

BODY = b"ok\n"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
