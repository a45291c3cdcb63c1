"""The ASGI application `manage.py serve` runs: console.asgi's application, plus /static/.

Static files are served by Django's ASGIStaticFilesHandler straight from the finders (app static
folders and static/), so a fresh checkout needs no collectstatic and no CDN (the console runs in
closed networks). It is used instead of WhiteNoise because WhiteNoise's middleware is sync-only and
would push every request of the async stack through a thread hop.
"""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from console.asgi import application as console_application

application = ASGIStaticFilesHandler(console_application)
