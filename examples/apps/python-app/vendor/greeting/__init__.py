"""A vendored package: requirements.txt names it, the python buildpack installs it offline."""


def hello(name):
    return "Hello from Python, %s" % name
