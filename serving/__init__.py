"""The front ends: the command line, the web page, the HTTP API and the widget's static files.

They sit above the engine and share one way to read filters, bound questions and describe
the corpus (`serving.requests`)."""
