from django.conf import settings
from django.http import HttpResponse
from django.urls import path


def index(request):
    return HttpResponse("Hello from Django, built by Cairn\n", content_type="text/plain")


def collected(request):
    # What `collectstatic` put in STATIC_ROOT when the image was built.
    return HttpResponse((settings.STATIC_ROOT / "site.css").read_text(), content_type="text/css")


urlpatterns = [path("", index), path("collected.css", collected)]
