"""A Flask app built by Cairn's Python example buildpack."""
import os

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello from Flask, built by Cairn\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
