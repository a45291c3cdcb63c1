from access import capabilities


def access(request):
    """`can` in every template: {% if can.migrate %} shows what the user's role may do."""
    user = getattr(request, "user", None)
    return {"can": capabilities(user) if user is not None else {}}
