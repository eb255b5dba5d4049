"""Re-encrypting every stored secret with the first encryption key: all of them, or none."""
from django.apps import apps
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from oauthmail.crypto import Ciphertext, DecryptionError, EncryptedTextField, rotate

BATCH = 500
NAMED = 20  # undecryptable values named in the error, at most


class RotationError(DecryptionError):
    """Values no configured key decrypts: nothing was re-encrypted. `values` names each (model, row, field)."""

    def __init__(self, values):
        self.values = values
        shown = "; ".join(values[:NAMED]) + ("; …" if len(values) > NAMED else "")
        super().__init__(ngettext(
            "Nothing was re-encrypted: none of the keys in OAUTHMAIL_ENCRYPTION_KEYS decrypts %(count)d value: "
            "%(values)s. Put back the key it was encrypted with (or clear that value), then rotate again.",
            "Nothing was re-encrypted: none of the keys in OAUTHMAIL_ENCRYPTION_KEYS decrypts %(count)d values: "
            "%(values)s. Put back the key they were encrypted with (or clear those values), then rotate again.",
            len(values),
        ) % {"count": len(values), "values": shown})


def encrypted_fields():
    for model in apps.get_models():
        names = [f.name for f in model._meta.get_fields() if isinstance(f, EncryptedTextField)]
        if names:
            yield model, names


def _row_name(model, pk, identifier):
    label = model._meta.label
    if identifier:
        return _("%(model)s “%(identifier)s” (pk %(pk)s)") % {"model": label, "identifier": identifier, "pk": pk}
    return _("%(model)s pk %(pk)s") % {"model": label, "pk": pk}


def rotate_all():
    """Rotate every value in one transaction; returns how many values each model had. Raises RotationError,
    having changed nothing, when any value cannot be decrypted."""
    counts, unreadable = {}, []
    with transaction.atomic():
        for model, names in encrypted_fields():
            has_identifier = any(f.name == "identifier" for f in model._meta.get_fields())
            columns = ["pk", "identifier" if has_identifier else "pk", *names]
            count, last_pk = 0, None
            while True:
                rows = model._base_manager.order_by("pk")
                if last_pk is not None:
                    rows = rows.filter(pk__gt=last_pk)
                batch = list(rows.values_list(*columns)[:BATCH])
                if not batch:
                    break
                for pk, identifier, *values in batch:
                    for name, value in zip(names, values, strict=True):
                        if not value:
                            continue
                        try:
                            rotated = Ciphertext(rotate(value))
                        except DecryptionError:
                            row = _row_name(model, pk, identifier if has_identifier else "")
                            unreadable.append(_("%(row)s, field %(field)s") % {"row": row, "field": name})
                            continue
                        # Only if unchanged meanwhile: a refresh may have just stored a new token.
                        count += model._base_manager.filter(pk=pk, **{name: value}).update(**{name: rotated})
                last_pk = batch[-1][0]
            counts[model._meta.label] = count
        if unreadable:
            raise RotationError(unreadable)  # rolls back every value rotated so far
    return counts
