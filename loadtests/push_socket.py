"""Where the push API's socket is: veles.api.realtime's NAMESPACE and SOCKETIO_PATH (a test holds
them equal). Not imported from there: that module loads the whole web app, up to a minute on a busy
machine, in every Locust process."""

NAMESPACE = "/integrations"
SOCKETIO_PATH = "/api/v1/ws"
