"""Django's makemessages, also extracting the templates of utilities.texts.Msg("...") texts."""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=Msg"]
