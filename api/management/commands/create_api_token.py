"""manage.py create_api_token USER --name NAME: a personal API token for a script, printed once
(as the tokens page shows it once); audited as token.created."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api.tokens import create_token
from utilities.commands import NoSystemChecks


class Command(NoSystemChecks, BaseCommand):
    help = "Create a personal API token for a user (it acts with the user's role); prints it once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="what the token is for")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {username!r}", returncode=2)
        try:
            _, token = create_token(user, name)
        except ValueError as exc:
            raise CommandError(f"--name: {exc}", returncode=2) from exc
        self.stdout.write(token)
