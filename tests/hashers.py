"""A password hasher for the tests: Django's PBKDF2 at one iteration instead of a million.

Each hash at Django 5.2's default costs about 0.3 s of CPU here, and the user fixtures hash once per
test: sampled with py-spy, the suite's workers spent most of their time in pbkdf2. The algorithm name
and the stored format stay Django's own, so a console or worker process the tests start (with the
default hashers) verifies these hashes too: PBKDF2 reads the iterations from the stored hash.
"""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1
