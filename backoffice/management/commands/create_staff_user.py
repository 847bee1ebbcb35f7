"""`manage.py create_staff_user EMAIL --role ROLE`: a staff account in one of the roles.

The password is generated and printed once (or read from `--password-stdin`), never
logged; the user should change it at first login.
"""

import secrets
import sys

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from backoffice.roles import ROLES


class Command(BaseCommand):
    help = "Create (or move) a staff user into a role: viewer, billing operator, finance admin."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument(
            "--password-stdin", action="store_true", help="Read the password from stdin."
        )

    def handle(self, *args, email: str, role: str, password_stdin: bool, **options) -> None:
        try:
            validate_email(email)
        except Exception as exc:
            raise CommandError(f"{email!r} is not an e-mail address.") from exc
        group = Group.objects.filter(name=role).first()
        if group is None:
            raise CommandError(f"Role {role!r} has no group: run `manage.py migrate` first.")
        password = sys.stdin.readline().rstrip("\n") if password_stdin else None
        generated = False
        with transaction.atomic():
            user, created = User.objects.get_or_create(
                username=email.lower(), defaults={"email": email.lower()}
            )
            user.is_staff = True
            user.is_superuser = False  # roles are for staff; superusers are engineering
            if created or password is not None:
                generated = password is None
                password = password or secrets.token_urlsafe(18)
                user.set_password(password)
            user.save()
            user.groups.set([group])
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} staff user {user.username} with role {role}.")
        if created and generated:
            self.stdout.write(f"Password (shown once): {password}")
