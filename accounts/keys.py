"""Re-encrypting every stored secret with the first encryption key."""
from django.apps import apps
from django.db import transaction

from oauthmail.crypto import Ciphertext, EncryptedTextField, rotate

BATCH = 500


def encrypted_fields():
    for model in apps.get_models():
        names = [f.name for f in model._meta.get_fields() if isinstance(f, EncryptedTextField)]
        if names:
            yield model, names


def rotate_all():
    """Rotate in batches, each in its own transaction; returns how many values each model had."""
    counts = {}
    for model, names in encrypted_fields():
        count = 0
        last_pk = None
        while True:
            rows = model._base_manager.order_by("pk")
            if last_pk is not None:
                rows = rows.filter(pk__gt=last_pk)
            batch = list(rows.values_list("pk", *names)[:BATCH])
            if not batch:
                break
            with transaction.atomic():
                for pk, *values in batch:
                    for name, value in zip(names, values, strict=True):
                        if value:
                            # Only if unchanged meanwhile: a refresh may have just stored a new token.
                            count += model._base_manager.filter(pk=pk, **{name: value}).update(
                                **{name: Ciphertext(rotate(value))}
                            )
            last_pk = batch[-1][0]
        counts[model._meta.label] = count
    return counts
